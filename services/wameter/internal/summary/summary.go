// Package summary prints the spend summary `make run` ends with:
// conversations and amounts by account, category and market, read back from
// ClickHouse.
package summary

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Print writes the summary of the database behind conn to w.
func Print(ctx context.Context, conn clickhouse.Conn, w io.Writer) error {
	var convs, charges uint64
	var total string
	if err := conn.QueryRow(ctx, "SELECT count() FROM conversations").Scan(&convs); err != nil {
		return fmt.Errorf("count conversations: %w", err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(), toString(sum(amount)) FROM charges").Scan(&charges, &total); err != nil {
		return fmt.Errorf("count charges: %w", err)
	}
	fmt.Fprintf(w, "conversations: %d   charges: %d   total amount: %s\n\n", convs, charges, total)

	rows, err := conn.Query(ctx, `
		SELECT waba_id, pricing_model, category, market, currency,
		       toUInt64(count()) AS units,
		       toUInt64(countIf(amount > 0)) AS charged,
		       toString(sum(amount)) AS spend
		FROM charges
		GROUP BY waba_id, pricing_model, category, market, currency
		ORDER BY waba_id, pricing_model, category, market`)
	if err != nil {
		return fmt.Errorf("spend by account: %w", err)
	}
	defer rows.Close()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "waba_id\tmodel\tcategory\tmarket\tcurrency\tunits\tcharged\tamount\t")
	for rows.Next() {
		var waba, model, cat, market, cur, spend string
		var units, charged uint64
		if err := rows.Scan(&waba, &model, &cat, &market, &cur, &units, &charged, &spend); err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t\n", waba, model, cat, market, cur, units, charged, spend)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nspend by account (rollup spend_hourly):")
	rows2, err := conn.Query(ctx, `
		SELECT waba_id, currency, toUInt64(sum(units)), toString(sum(amount))
		FROM spend_hourly GROUP BY waba_id, currency ORDER BY waba_id`)
	if err != nil {
		return fmt.Errorf("spend rollup: %w", err)
	}
	defer rows2.Close()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "waba_id\tcurrency\tunits\tamount\t")
	for rows2.Next() {
		var waba, cur, spend string
		var units uint64
		if err := rows2.Scan(&waba, &cur, &units, &spend); err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t\n", waba, cur, units, spend)
	}
	if err := rows2.Err(); err != nil {
		return err
	}
	return tw.Flush()
}

// Settle waits until the charges table holds at least one row and its count
// has not changed for quiet, polling every second; it gives up after
// timeout. It returns the count.
func Settle(ctx context.Context, conn clickhouse.Conn, quiet, timeout time.Duration) (uint64, error) {
	deadline := time.Now().Add(timeout)
	var last uint64
	stableSince := time.Now()
	for {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM charges").Scan(&n); err != nil {
			return 0, fmt.Errorf("count charges: %w", err)
		}
		if n != last || n == 0 {
			last, stableSince = n, time.Now()
		} else if time.Since(stableSince) >= quiet {
			return n, nil
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("charges still changing (or empty: %d rows) after %s", n, timeout)
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
