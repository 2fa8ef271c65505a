// Command wameter is the metering pipeline for WhatsApp Business Platform
// traffic: one binary whose subcommands run the pipeline's stages (alone or
// all in one process) and its tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/wameter/wameter/services/wameter/internal/replay"
	"github.com/wameter/wameter/services/wameter/internal/simulate"
)

// command is one subcommand: it gets its own arguments.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"all-in-one": {"run every stage in one process (the embedded default)", roleCommand("normalize", "window", "account", "sink")},
	"normalize":  {"decode webhooks and send records into events keyed by customer", roleCommand("normalize")},
	"window":     {"derive conversations and billing units per customer (stateful)", roleCommand("window")},
	"account":    {"price units per account: free tier, volume tiers, rates", roleCommand("account")},
	"sink":       {"store conversations and charges in ClickHouse", roleCommand("sink")},
	"gateway":    {"receive Meta's webhook POSTs, check signatures, write them to the webhooks topic", gatewayCommand},
	"migrate":    {"apply schemas/ to CLICKHOUSE_DATABASE and exit", migrateCommand},
	"produce":    {"write a JSON-lines record file (simulate -out) to the input topics", produceCommand},
	"summary":    {"print spend by account, category and market from ClickHouse", summaryCommand},
	"alert":      {"alert on spend spikes and budgets from ClickHouse to a webhook", alertCommand},
	"replay":     {"derive conversations and charges from webhook and send-record files, no infrastructure", replay.Run},
	"simulate":   {"generate a realistic, seeded stream of webhooks and send records", simulate.Run},
}

var errUsage = errors.New("usage")

// exitCoder is an error that chooses the exit status itself (replay: 1 when
// some input lines were rejected, 2 on usage errors).
type exitCoder interface {
	error
	ExitCode() int
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process at once
	}()
	os.Exit(runMain(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "wameter: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	if err := cmd.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, errUsage) {
			return 2
		}
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "wameter %s: %v\n", args[0], err)
		if ec, ok := errors.AsType[exitCoder](err); ok {
			return ec.ExitCode()
		}
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: wameter COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
}
