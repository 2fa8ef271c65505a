package alert

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/shopspring/decimal"
)

// spendStore reads spend from spend_hourly and reads and writes spend_alerts.
type spendStore struct {
	conn clickhouse.Conn
}

// windowSpends reads sum(amount) per account, category and currency in the
// window [now-window, now) on the hour column and in the same window on each
// of the days previous days, numbered 0 (current) to days. The windows are
// cut in SQL so that only (days+1) rows per series come back, whatever the
// window. spend_hourly is a SummingMergeTree: always sum.
func (s *spendStore) windowSpends(ctx context.Context, now time.Time, window time.Duration, days int) ([]windowSpend, error) {
	from := now.Add(-window - time.Duration(days)*24*time.Hour)
	// age = now - hour, in (0, ...]; hour h is in day d's window when
	// d×86400 < age <= d×86400 + window.
	rows, err := s.conn.Query(ctx, `
		SELECT waba_id, category, currency,
		       toUInt32(intDiv(toInt64(?) - toInt64(toUInt32(hour)) - 1, 86400)) AS day,
		       toString(sum(amount))
		FROM spend_hourly
		WHERE hour >= toDateTime(?) AND hour < toDateTime(?)
		  AND (toInt64(?) - toInt64(toUInt32(hour)) - 1) % 86400 < ?
		GROUP BY waba_id, category, currency, day`,
		now.Unix(), from.Unix(), now.Unix(), now.Unix(), int64(window/time.Second))
	if err != nil {
		return nil, fmt.Errorf("read spend_hourly windows: %w", err)
	}
	defer rows.Close()
	var out []windowSpend
	for rows.Next() {
		var w windowSpend
		var day uint32
		var amount string
		if err := rows.Scan(&w.WABAID, &w.Category, &w.Currency, &day, &amount); err != nil {
			return nil, fmt.Errorf("scan spend_hourly windows: %w", err)
		}
		w.Day = int(day)
		if w.Amount, err = decimal.NewFromString(amount); err != nil {
			return nil, fmt.Errorf("spend_hourly amount %q: %w", amount, err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read spend_hourly windows: %w", err)
	}
	return out, nil
}

// periodSpends reads sum(amount) per account and currency for the hours in
// [from, to).
func (s *spendStore) periodSpends(ctx context.Context, from, to time.Time) ([]periodSpend, error) {
	rows, err := s.conn.Query(ctx, `
		SELECT waba_id, currency, toString(sum(amount))
		FROM spend_hourly
		WHERE hour >= toDateTime(?) AND hour < toDateTime(?)
		GROUP BY waba_id, currency`, from.Unix(), to.Unix())
	if err != nil {
		return nil, fmt.Errorf("read spend_hourly: %w", err)
	}
	defer rows.Close()
	var out []periodSpend
	for rows.Next() {
		var p periodSpend
		var amount string
		if err := rows.Scan(&p.WABAID, &p.Currency, &amount); err != nil {
			return nil, fmt.Errorf("scan spend_hourly: %w", err)
		}
		if p.Amount, err = decimal.NewFromString(amount); err != nil {
			return nil, fmt.Errorf("spend_hourly amount %q: %w", amount, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read spend_hourly: %w", err)
	}
	return out, nil
}

// record inserts a into spend_alerts.
func (s *spendStore) record(ctx context.Context, a *Alert) error {
	batch, err := s.conn.PrepareBatch(ctx, `INSERT INTO spend_alerts
		(alert_id, rule, waba_id, category, state, value, baseline, threshold, currency, window_start, at, message)`)
	if err != nil {
		return fmt.Errorf("record alert %s: %w", a.ID, err)
	}
	defer batch.Abort() //nolint:errcheck // no-op once sent
	if err := batch.Append(a.ID, a.Rule, a.WABAID, a.Category, a.State, a.Value.Round(6), a.Baseline.Round(6),
		a.Threshold.Round(6), a.Currency, a.WindowStart.UTC(), a.At.UTC(), a.Message); err != nil {
		return fmt.Errorf("record alert %s: %w", a.ID, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("record alert %s: %w", a.ID, err)
	}
	return nil
}

// openAlerts reads the alerts that fired and have not resolved, oldest
// first.
func (s *spendStore) openAlerts(ctx context.Context) ([]Alert, error) {
	rows, err := s.conn.Query(ctx, `
		SELECT alert_id, rule, waba_id, category, currency,
		       toString(value), toString(baseline), toString(threshold), window_start, at, message
		FROM spend_alerts
		WHERE state = 'firing'
		  AND alert_id NOT IN (SELECT alert_id FROM spend_alerts WHERE state = 'resolved')
		ORDER BY at, alert_id`)
	if err != nil {
		return nil, fmt.Errorf("read spend_alerts: %w", err)
	}
	defer rows.Close()
	var out []Alert
	for rows.Next() {
		a := Alert{State: StateFiring}
		var value, baseline, threshold string
		if err := rows.Scan(&a.ID, &a.Rule, &a.WABAID, &a.Category, &a.Currency,
			&value, &baseline, &threshold, &a.WindowStart, &a.At, &a.Message); err != nil {
			return nil, fmt.Errorf("scan spend_alerts: %w", err)
		}
		for _, d := range []struct {
			dst *decimal.Decimal
			s   string
		}{{&a.Value, value}, {&a.Baseline, baseline}, {&a.Threshold, threshold}} {
			if *d.dst, err = decimal.NewFromString(d.s); err != nil {
				return nil, fmt.Errorf("spend_alerts %s: %q: %w", a.ID, d.s, err)
			}
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read spend_alerts: %w", err)
	}
	return out, nil
}
