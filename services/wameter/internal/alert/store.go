package alert

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/shopspring/decimal"
)

// Store reads spend from spend_hourly and reads and writes spend_alerts.
type Store struct {
	conn clickhouse.Conn
}

// hourSpends reads sum(amount) per account, category, currency and hour for
// the hours in [from, to). spend_hourly is a SummingMergeTree: always sum.
func (s *Store) hourSpends(ctx context.Context, from, to time.Time) ([]hourSpend, error) {
	rows, err := s.conn.Query(ctx, `
		SELECT waba_id, category, currency, hour, toString(sum(amount))
		FROM spend_hourly
		WHERE hour >= toDateTime(?) AND hour < toDateTime(?)
		GROUP BY waba_id, category, currency, hour`, from.Unix(), to.Unix())
	if err != nil {
		return nil, fmt.Errorf("read spend_hourly: %w", err)
	}
	defer rows.Close()
	var out []hourSpend
	for rows.Next() {
		var h hourSpend
		var amount string
		if err := rows.Scan(&h.WABAID, &h.Category, &h.Currency, &h.Hour, &amount); err != nil {
			return nil, fmt.Errorf("scan spend_hourly: %w", err)
		}
		if h.Amount, err = decimal.NewFromString(amount); err != nil {
			return nil, fmt.Errorf("spend_hourly amount %q: %w", amount, err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read spend_hourly: %w", err)
	}
	return out, nil
}

// periodSpends reads sum(amount) per account and currency for the hours in
// [from, to).
func (s *Store) periodSpends(ctx context.Context, from, to time.Time) ([]periodSpend, error) {
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
func (s *Store) record(ctx context.Context, a *Alert) error {
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
func (s *Store) openAlerts(ctx context.Context) ([]Alert, error) {
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
