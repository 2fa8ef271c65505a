package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/sink"
	"github.com/wameter/wameter/pkg/stream"
	"github.com/wameter/wameter/services/wameter/internal/app"
	"github.com/wameter/wameter/services/wameter/internal/produce"
	"github.com/wameter/wameter/services/wameter/internal/summary"
)

// produceCommand writes a JSON-lines record file to the input topics.
func produceCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: wameter produce FILE.jsonl   (- for standard input)")
		return errUsage
	}
	cfg, err := app.LoadConfig(env.ToMap(os.Environ()))
	if err != nil {
		return err
	}
	in := io.Reader(os.Stdin)
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	if _, err := stream.EnsureTopics(ctx, cfg.Kafka, []stream.TopicSpec{
		{Name: cfg.Topics.Webhooks, Partitions: cfg.Partitions, ReplicationFactor: cfg.ReplicationFactor},
		{Name: cfg.Topics.Sends, Partitions: cfg.Partitions, ReplicationFactor: cfg.ReplicationFactor},
	}); err != nil {
		return err
	}
	p, err := stream.NewProducer(cfg.Kafka, cfg.Producer, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		return err
	}
	defer p.Close()
	n, err := produce.Write(ctx, in, produce.Topics{"webhooks": cfg.Topics.Webhooks, "sends": cfg.Topics.Sends}, p)
	fmt.Fprintf(stdout, "produced %d records\n", n)
	return err
}

// summaryCommand prints spend by account, category and market from ClickHouse.
func summaryCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("summary", flag.ContinueOnError)
	fs.SetOutput(stderr)
	settle := fs.Duration("wait", 0, "first wait until the charges table has not changed for this long")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up waiting after this long")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	cfg, err := app.LoadConfig(env.ToMap(os.Environ()))
	if err != nil {
		return err
	}
	conn, err := sink.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	if *settle > 0 {
		n, err := summary.Settle(ctx, conn, *settle, *timeout)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "charges settled at %d rows\n", n)
	}
	return summary.Print(ctx, conn, stdout)
}
