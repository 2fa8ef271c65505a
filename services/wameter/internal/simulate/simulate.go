// Package simulate is `wameter simulate`: it writes the records of
// pkg/traffic as JSON lines, one per record, in arrival order:
//
//	{"topic":"webhooks","key":"5511987654321","at":1754265600123,"headers":{},"value":{...}}
//
// topic is "webhooks" or "sends", key the customer wa_id, at the arrival
// time in Unix milliseconds, headers the Kafka record headers (On-Premises
// webhooks carry phone_number_id and waba_id), value the record's JSON as
// is. A malformed record's value that is not JSON is written as a string
// in "value_raw" instead, and one spread over several lines is compacted. `wameter replay` reads these lines.
package simulate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/wameter/wameter/pkg/traffic"
)

// usageError makes the process exit with status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// ExitCode is the process exit status for a usage error.
func (e *usageError) ExitCode() int { return 2 }

const usageText = `Usage: wameter simulate [flags]

Generates a realistic, deterministic stream of WhatsApp webhooks (Cloud API
bodies, with the pricing objects of the era) and BSP send records for a few
accounts, in arrival order, as JSON lines:

  {"topic":"webhooks"|"sends","key":"<wa_id>","at":<unix ms>,"headers":{...},"value":<record JSON>}

The same flags and seed give the same bytes. 'wameter replay FILE' derives
the conversations and charges of the output.

Flags:
`

// Run is the simulate subcommand.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, out, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	started := time.Now()
	var st stats
	if out == "-" {
		err = write(ctx, cfg, stdout, &st)
	} else {
		err = writeFile(ctx, cfg, out, &st)
	}
	if err != nil {
		return err
	}
	elapsed := time.Since(started)
	fmt.Fprintf(stderr, "simulate: %d records (%d webhooks, %d sends), %.1f MB, arrivals %s to %s, in %s (%.0f records/s)\n",
		st.records, st.webhooks, st.sends, float64(st.bytes)/1e6,
		time.UnixMilli(st.first).UTC().Format(time.RFC3339), time.UnixMilli(st.last).UTC().Format(time.RFC3339),
		elapsed.Round(time.Millisecond), float64(st.records)/elapsed.Seconds())
	return nil
}

type stats struct {
	records, webhooks, sends int
	bytes                    int64
	first, last              int64
}

func parseFlags(args []string, stderr io.Writer) (traffic.Config, string, error) {
	cfg := traffic.DefaultConfig()
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	start := fs.String("start", cfg.Start.Format(time.RFC3339), "first instant of the traffic, RFC 3339 (before 2025-07-01: conversation-based pricing objects)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long conversations start for (24h, 72h, ...)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed: the same seed gives the same bytes")
	nAccounts := fs.Int("accounts", len(cfg.Accounts), "number of WhatsApp Business Accounts (cycling through a retailer, a Latin American shop and a fintech)")
	customers := fs.Int("customers", cfg.Accounts[0].Customers, "customers per account")
	fs.Float64Var(&cfg.MessagesPerCustomerPerDay, "messages", cfg.MessagesPerCustomerPerDay, "mean messages per customer per day, both directions")
	fs.IntVar(&cfg.Malformed, "malformed", 0, "number of malformed records to inject (each rejected by the decoder)")
	fs.Float64Var(&cfg.MissingSendRate, "missing-sends", cfg.MissingSendRate, "share of outbound messages without a send record (1: webhooks only)")
	onPrem := fs.Int("onprem", 0, "number of accounts (the last ones) on the On-Premises API: bodies without envelope, ids in the headers")
	spikeAccount := fs.Int("spike-account", 0, "index of the account whose marketing volume -spike-factor multiplies")
	spikeAt := fs.String("spike-at", "", "start of the spike, RFC 3339 (default: -start + 12h)")
	spikeFor := fs.Duration("spike-duration", time.Hour, "length of the spike")
	spikeFactor := fs.Float64("spike-factor", 0, "multiply the marketing volume of -spike-account by this over the spike (0: no spike)")
	out := fs.String("out", "-", "output `FILE` (JSON lines); - is stdout")
	brokers := fs.String("kafka", "", "produce to Kafka `BROKERS` instead of writing a file (not available yet)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, "", err
		}
		return cfg, "", &usageError{err: err}
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if *brokers != "" {
		errs = append(errs, errors.New("-kafka: producing to Kafka is not available yet; write a file with -out"))
	}
	t, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		errs = append(errs, fmt.Errorf("-start: %w", err))
	}
	cfg.Start = t
	if *nAccounts < 1 || *customers < 1 {
		errs = append(errs, fmt.Errorf("-accounts %d, -customers %d: want at least 1", *nAccounts, *customers))
	} else {
		cfg.Accounts = traffic.DefaultAccounts(*nAccounts, *customers)
		if *onPrem < 0 || *onPrem > *nAccounts {
			errs = append(errs, fmt.Errorf("-onprem %d: want 0 to -accounts", *onPrem))
		} else {
			for i := *nAccounts - *onPrem; i < *nAccounts; i++ {
				cfg.Accounts[i].OnPremises = true
			}
		}
	}
	if *spikeFactor != 0 {
		spike := &traffic.Spike{Start: cfg.Start.Add(12 * time.Hour), Duration: *spikeFor, Factor: *spikeFactor}
		if *spikeAt != "" {
			if spike.Start, err = time.Parse(time.RFC3339, *spikeAt); err != nil {
				errs = append(errs, fmt.Errorf("-spike-at: %w", err))
			}
		}
		if *spikeAccount < 0 || *spikeAccount >= len(cfg.Accounts) {
			errs = append(errs, fmt.Errorf("-spike-account %d: want 0 to %d", *spikeAccount, len(cfg.Accounts)-1))
		} else {
			spike.WABA = cfg.Accounts[*spikeAccount].WABA
		}
		cfg.Spike = spike
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, "", &usageError{err: fmt.Errorf("%w\n(wameter simulate -h for help)", err)}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, "", &usageError{err: err}
	}
	return cfg, *out, nil
}

func writeFile(ctx context.Context, cfg traffic.Config, path string, st *stats) error {
	f, err := os.Create(path)
	if err != nil {
		return &usageError{err: err}
	}
	if err := write(ctx, cfg, f, st); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("simulate: close %s: %w", path, err)
	}
	return nil
}

// write generates cfg's records and writes them to w as JSON lines.
func write(ctx context.Context, cfg traffic.Config, w io.Writer, st *stats) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var line []byte
	err := traffic.Generate(cfg, func(r traffic.Record) error {
		if st.records%8192 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if st.records == 0 {
			st.first = r.At
		}
		st.records++
		st.last = r.At
		st.bytes += int64(len(r.Value))
		if r.Topic == traffic.TopicSends {
			st.sends++
		} else {
			st.webhooks++
		}
		line = AppendLine(line[:0], r)
		_, err := bw.Write(line)
		return err
	})
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("simulate: write: %w", err)
	}
	return nil
}

// AppendLine appends r as one JSON line (with its newline) to dst.
func AppendLine(dst []byte, r traffic.Record) []byte {
	dst = append(dst, `{"topic":`...)
	dst = appendString(dst, r.Topic)
	dst = append(dst, `,"key":`...)
	dst = appendString(dst, r.Key)
	dst = append(dst, `,"at":`...)
	dst = strconv.AppendInt(dst, r.At, 10)
	dst = append(dst, `,"headers":{`...)
	if len(r.Headers) > 0 {
		keys := make([]string, 0, len(r.Headers))
		for k := range r.Headers {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendString(dst, r.Headers[k])
		}
	}
	dst = append(dst, '}')
	// Generated values are valid JSON on one line by construction; only
	// the malformed ones need checking.
	valid := !r.Malformed || json.Valid(r.Value)
	switch {
	case valid && (!r.Malformed || bytes.IndexByte(r.Value, '\n') < 0 && bytes.IndexByte(r.Value, '\r') < 0):
		dst = append(dst, `,"value":`...)
		dst = append(dst, r.Value...)
	case valid:
		// Valid JSON spread over lines: compact it onto this one.
		buf := bytes.NewBuffer(append(dst, `,"value":`...))
		_ = json.Compact(buf, r.Value) // cannot fail: the value is valid
		dst = buf.Bytes()
	default:
		dst = append(dst, `,"value_raw":`...)
		dst = appendString(dst, r.Value)
	}
	return append(dst, "}\n"...)
}

// appendString appends s as a JSON string.
func appendString[T string | []byte](dst []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b, _ := json.Marshal(string(s)) // a string always marshals
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
