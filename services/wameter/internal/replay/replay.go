// Package replay is `wameter replay`: the billing engine without
// infrastructure. It reads webhook bodies and send records from JSON-lines
// files, runs billing.Derive over all of them at once, and prints the
// conversation and charge rows the pipeline would write to ClickHouse, with
// the same columns.
//
// # Input
//
// One JSON value per line; blank lines and lines starting with '#' are
// skipped (the example files use them as comments). A line is one of:
//
//   - a send record (spec 1.1): an object with message_id at top level;
//   - a Meta webhook POST body: the Cloud API envelope (object/entry) or the
//     On-Premises shape (top-level statuses, messages, contacts);
//   - a wrapped record: {"headers":{...},"body":{...}}. headers are the
//     Kafka record headers; an On-Premises body needs them, since it
//     carries no business ids of its own:
//     {"headers":{"phone_number_id":"106540352242922","waba_id":"102290129340398"},"body":{"statuses":[...]}}
//     The body's shape says whether it is a webhook or a send record;
//   - a record as `wameter simulate` writes it:
//     {"topic":"webhooks"|"sends","key":"...","at":...,"headers":{...},"value":{...}}
//     ("value_raw":"..." instead of value for a body that is not JSON).
//
// A line that does not decode is rejected whole, as the pipeline's
// dead-letter path would: it is reported on stderr as file:line: reason:
// message, with reason one of webhook.Reasons, and the rest goes on.
//
// # Exit status
//
// 0 when every line decoded, 1 when some were rejected (the rows of the
// others are still printed), 2 when replay cannot run: bad flags,
// unreadable input, accounts or pricing files.
package replay

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/wameter/wameter/pkg/accounts"
	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/pricing"
)

// Exit statuses of Run's errors (see ExitCode).
const (
	exitRejected = 1
	exitUsage    = 2
)

// exitError is an error that chooses the process exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode is the status the process should exit with.
func (e *exitError) ExitCode() int { return e.code }

func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// options are replay's flags.
type options struct {
	accountsFile string
	pricingDir   string
	format       string // jsonl | csv
	what         string // charges | conversations | both
	customer     uint64 // 0: every customer
	explain      bool
	files        []string
}

const usageText = `Usage: wameter replay [flags] FILE...

Reads JSON-lines files ('-' is stdin) of Meta webhook bodies and BSP send
records, derives conversations and charges with the billing engine, and
prints them with the columns of the ClickHouse tables. Rejected lines and a
summary go to stderr.

Each line is a send record (message_id at top level), a webhook body
(object/entry, or On-Premises statuses/messages/contacts), a wrapped record
{"headers":{"phone_number_id":"...","waba_id":"..."},"body":{...}} (headers
are what Kafka headers would carry; an On-Premises body needs them), or a
record written by 'wameter simulate'. Blank lines and lines starting with
'#' are skipped.

Exit status: 0 if every line decoded, 1 if some were rejected, 2 on usage
errors.

Flags:
`

// Run is the replay subcommand. stdout gets the rows, stderr the rejected
// lines and the summary.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	catalog, book, err := loadConfig(opts)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}

	in := &input{}
	for _, name := range opts.files {
		if err := in.readFile(ctx, name, stderr); err != nil {
			return err
		}
	}

	eng, err := billing.New(billing.Config{Catalog: catalog, Accounts: book})
	if err != nil {
		return err
	}
	led, err := billing.NewLedger(catalog, book)
	if err != nil {
		return err
	}
	// Derive sorts its events in place; the explanation needs them with
	// their file and line, in input order.
	events := in.events
	if opts.explain {
		events = slices.Clone(in.events)
	}
	res := billing.Derive(events, eng, led)

	out := rowsFor(res, opts, book)
	bw := bufio.NewWriterSize(stdout, 64<<10)
	if opts.explain {
		err = writeExplain(bw, in, res, opts)
	} else {
		err = writeRows(bw, out, opts)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}

	writeSummary(stderr, in, res, eng.Stats, opts)
	if in.rejected > 0 {
		return &exitError{code: exitRejected, err: fmt.Errorf("%d of %d records rejected", in.rejected, in.records)}
	}
	return nil
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var opts options
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&opts.accountsFile, "accounts", "", "accounts `FILE` (YAML, spec 1.2); default: every WABA gets the defaults")
	fs.StringVar(&opts.pricingDir, "pricing", "", "`DIR` holding markets.csv, rates.csv, tiers.csv; default: the compiled-in data")
	fs.StringVar(&opts.format, "format", "jsonl", "output format: `jsonl|csv`")
	fs.StringVar(&opts.what, "what", "both", "rows to print: `charges|conversations|both`")
	customer := fs.String("customer", "", "print only the rows of this customer `WA_ID` (digits, '+' and separators allowed)")
	fs.BoolVar(&opts.explain, "explain", false, "print a readable report instead of rows: per row, why it exists, the window state and the events of its customer that led to it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return opts, err
		}
		return opts, &exitError{code: exitUsage, err: err}
	}
	opts.files = fs.Args()
	var errs []error
	if len(opts.files) == 0 {
		errs = append(errs, errors.New("no input FILE (use - for stdin)"))
	}
	if opts.format != "jsonl" && opts.format != "csv" {
		errs = append(errs, fmt.Errorf("-format %q: want jsonl or csv", opts.format))
	}
	if opts.what != "charges" && opts.what != "conversations" && opts.what != "both" {
		errs = append(errs, fmt.Errorf("-what %q: want charges, conversations or both", opts.what))
	}
	if *customer != "" {
		id, ok := parseWaID(*customer)
		if !ok {
			errs = append(errs, fmt.Errorf("-customer %q: not a phone number", *customer))
		}
		opts.customer = id
	}
	if n := countStdin(opts.files); n > 1 {
		errs = append(errs, errors.New("stdin (-) given more than once"))
	}
	if err := errors.Join(errs...); err != nil {
		return opts, &exitError{code: exitUsage, err: fmt.Errorf("%w\n(wameter replay -h for help)", err)}
	}
	return opts, nil
}

func countStdin(files []string) int {
	n := 0
	for _, f := range files {
		if f == "-" {
			n++
		}
	}
	return n
}

// parseWaID reads a customer number the way a send record's "to" may be
// written: digits with an optional '+', spaces, dashes and parentheses.
func parseWaID(s string) (uint64, bool) {
	var id uint64
	digits := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if digits == 0 && c == '0' || digits >= 19 {
				return 0, false
			}
			id = id*10 + uint64(c-'0')
			digits++
		case c == '+' && i == 0, c == ' ', c == '-', c == '(', c == ')':
		default:
			return 0, false
		}
	}
	return id, digits > 0
}

func loadConfig(opts options) (*pricing.Catalog, *accounts.Book, error) {
	var catalog *pricing.Catalog
	var err error
	if opts.pricingDir != "" {
		catalog, err = pricing.LoadDir(opts.pricingDir)
	} else {
		catalog, err = pricing.Default()
	}
	if err != nil {
		return nil, nil, err
	}
	book := accounts.Empty()
	if opts.accountsFile != "" {
		if book, err = accounts.Load(opts.accountsFile); err != nil {
			return nil, nil, err
		}
	}
	if err := book.Validate(catalog.HasCurrency); err != nil {
		return nil, nil, err
	}
	return catalog, book, nil
}

// stdin is what "-" reads; tests replace it.
var stdin io.Reader = os.Stdin

// openInput opens a named input; "-" is stdin, which the caller must not close.
func openInput(name string) (io.ReadCloser, error) {
	if name == "-" {
		return io.NopCloser(stdin), nil
	}
	return os.Open(name)
}

// writeSummary prints the counts an operator checks first. Rows and
// amounts are those of the -customer when given (whatever -what prints);
// events and the engine's counters are over the whole input.
func writeSummary(w io.Writer, in *input, res billing.Result, st billing.Stats, opts options) {
	all := opts
	all.what = "both"
	out := rowsFor(res, all, nil)
	var b strings.Builder
	fmt.Fprintf(&b, "replay: %d records (%d rejected), %d events; ", in.records, in.rejected, len(in.events))
	if opts.customer != 0 {
		fmt.Fprintf(&b, "customer %d: ", opts.customer)
	}
	fmt.Fprintf(&b, "%d conversations, %d charges", len(out.conversations), len(out.charges))
	amounts := map[string]int64{}
	noRate := 0
	for _, u := range out.charges {
		amounts[u.Currency] += u.AmountMicro
		if u.PricingType == billing.PTNoRate {
			noRate++
		}
	}
	currencies := make([]string, 0, len(amounts))
	for c := range amounts {
		currencies = append(currencies, c)
	}
	slices.Sort(currencies)
	b.WriteString("; amount")
	if len(currencies) == 0 {
		b.WriteString(" 0")
	}
	for i, c := range currencies {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %s %s", formatMicros(amounts[c]), c)
	}
	fmt.Fprintf(&b, "; no_rate %d; unknown kind %d; legacy %d\n", noRate, st.UnknownKind, st.Legacy)
	_, _ = io.WriteString(w, b.String())
}
