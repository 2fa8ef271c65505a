// Package accounts reads the operator's accounts file: per WhatsApp Business
// Account (WABA), the settings billing needs (spec 1.2). Every field but
// waba_id is optional, and a WABA that is not in the file, or every WABA
// when there is no file, gets every default.
//
// The file is YAML. Unknown keys are an error, and every problem is
// reported at once:
//
//	accounts:
//	  - waba_id: "102938475610"
//	    portfolio_id: "5550001"      # business portfolio for PMP volume tiers; default = waba_id
//	    timezone: America/Sao_Paulo  # IANA zone of month boundaries and rate switches; default UTC
//	    currency: USD                # billing currency, needs a rate card; default USD
//	    country: BR                  # primary business location, ISO 3166-1 alpha-2; default none
//	    auth_international_from: 2025-02-01T00:00:00Z  # default none
//	  - waba_id: 102938475611        # ids may be quoted or not
//	    timezone: Asia/Kolkata
//	    country: IN
//	    auth_international_from: 2024-07-01            # a date: local midnight in timezone
//
// auth_international_from is the instant from which authentication templates
// to customers in another country are rated authentication-international
// (spec 4.5): an RFC 3339 instant, or a YYYY-MM-DD date meaning midnight in
// the account's time zone.
package accounts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
	_ "time/tzdata" // zones must resolve on minimal machines without a zoneinfo database

	"github.com/nyaruka/phonenumbers"
	"gopkg.in/yaml.v3"
)

// Defaults of an account field that is not set (spec 1.2).
const (
	DefaultTimezone = "UTC"
	DefaultCurrency = "USD"
)

// Account is the billing configuration of one WABA. It is shared: callers
// must not modify it.
type Account struct {
	WABA      uint64
	Portfolio uint64 // business portfolio; = WABA when not set
	Timezone  string // IANA name
	Location  *time.Location
	Currency  string // ISO 4217
	Country   string // ISO 3166-1 alpha-2; "" when not set
	// AuthIntlFrom is the Unix second from which authentication-international
	// rates apply, when HasAuthIntlFrom.
	AuthIntlFrom    int64
	HasAuthIntlFrom bool
}

// Book is the set of configured accounts. It is immutable apart from an
// internal cache and safe for concurrent use.
type Book struct {
	byWABA   map[uint64]*Account
	accounts []*Account // in file order
	defaults sync.Map   // uint64 -> *Account, for WABAs not in the file
}

// Empty returns a book with no configured account: every WABA gets the
// defaults.
func Empty() *Book {
	return &Book{byWABA: make(map[uint64]*Account)}
}

// Load reads and parses the accounts file at path.
func Load(path string) (*Book, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read accounts file: %w", err)
	}
	b, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("accounts file %s: %w", path, err)
	}
	return b, nil
}

// Get returns the account of waba: the configured one, or a default account
// for that WABA (UTC, USD, portfolio = waba, no country). The default is
// built once per WABA and cached, so Get does not allocate once a WABA has
// been seen. The result must not be modified.
func (b *Book) Get(waba uint64) *Account {
	if a, ok := b.byWABA[waba]; ok {
		return a
	}
	if a, ok := b.defaults.Load(waba); ok {
		return a.(*Account)
	}
	a, _ := b.defaults.LoadOrStore(waba, defaultAccount(waba))
	return a.(*Account)
}

// Accounts returns the configured accounts in file order.
func (b *Book) Accounts() []*Account {
	return append([]*Account(nil), b.accounts...)
}

// Validate checks that every configured account's currency, and the default
// currency that WABAs not in the file get, has a rate card. Call it when
// wiring, with the price catalog's HasCurrency.
func (b *Book) Validate(hasCurrency func(currency string) bool) error {
	if hasCurrency == nil {
		return errors.New("validate accounts: nil hasCurrency")
	}
	var errs []error
	for i, a := range b.accounts {
		if !hasCurrency(a.Currency) {
			errs = append(errs, fmt.Errorf("accounts[%d] (waba_id %d): currency %s has no rate card", i, a.WABA, a.Currency))
		}
	}
	if !hasCurrency(DefaultCurrency) {
		errs = append(errs, fmt.Errorf("default currency %s (of WABAs not in the accounts file) has no rate card", DefaultCurrency))
	}
	return errors.Join(errs...)
}

func defaultAccount(waba uint64) *Account {
	return &Account{
		WABA:      waba,
		Portfolio: waba,
		Timezone:  DefaultTimezone,
		Location:  time.UTC,
		Currency:  DefaultCurrency,
	}
}

// file is the YAML shape. Every value is read as the text written, so that
// ids are taken exactly, quoted or not, and checked here.
type file struct {
	Accounts []entry `yaml:"accounts"`
}

type entry struct {
	WABAID                string `yaml:"waba_id"`
	PortfolioID           string `yaml:"portfolio_id"`
	Timezone              string `yaml:"timezone"`
	Currency              string `yaml:"currency"`
	Country               string `yaml:"country"`
	AuthInternationalFrom string `yaml:"auth_international_from"`
}

// Parse parses an accounts file. It reports every problem, joined: YAML
// errors (with their line) and, per entry, its index and waba_id.
func Parse(data []byte) (*Book, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var errs []error
	err := dec.Decode(&f)
	var typeErr *yaml.TypeError
	switch {
	case errors.Is(err, io.EOF): // empty file: no accounts
	case errors.As(err, &typeErr):
		// Unknown keys and values of the wrong shape: the rest was decoded,
		// so go on and report its problems too.
		for _, e := range typeErr.Errors {
			errs = append(errs, errors.New(e))
		}
	case err != nil:
		return nil, fmt.Errorf("decode accounts YAML: %w", err)
	default:
		var extra any
		if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
			errs = append(errs, errors.New("more than one YAML document: want one"))
		}
	}

	b := Empty()
	for i, e := range f.Accounts {
		a, entryErrs := e.account()
		if len(entryErrs) > 0 {
			for _, err := range entryErrs {
				errs = append(errs, fmt.Errorf("accounts[%d] (waba_id %q): %w", i, e.WABAID, err))
			}
			continue
		}
		if prev, dup := b.byWABA[a.WABA]; dup {
			errs = append(errs, fmt.Errorf("accounts[%d] (waba_id %q): duplicate waba_id, also accounts[%d]", i, e.WABAID, indexOf(b.accounts, prev)))
			continue
		}
		b.byWABA[a.WABA] = a
		b.accounts = append(b.accounts, a)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return b, nil
}

func indexOf(list []*Account, a *Account) int {
	for i, x := range list {
		if x == a {
			return i
		}
	}
	return -1
}

// account checks an entry and fills in defaults.
func (e entry) account() (*Account, []error) {
	var errs []error
	a := &Account{Timezone: DefaultTimezone, Location: time.UTC, Currency: DefaultCurrency}

	if e.WABAID == "" {
		errs = append(errs, errors.New("missing waba_id"))
	} else if id, err := parseID(e.WABAID); err != nil {
		errs = append(errs, fmt.Errorf("waba_id: %w", err))
	} else {
		a.WABA = id
	}
	a.Portfolio = a.WABA
	if e.PortfolioID != "" {
		if id, err := parseID(e.PortfolioID); err != nil {
			errs = append(errs, fmt.Errorf("portfolio_id: %w", err))
		} else {
			a.Portfolio = id
		}
	}

	zoneOK := true
	if e.Timezone != "" {
		loc, err := loadZone(e.Timezone)
		if err != nil {
			errs = append(errs, fmt.Errorf("timezone: %w", err))
			zoneOK = false
		} else {
			a.Timezone, a.Location = e.Timezone, loc
		}
	}

	if e.Currency != "" {
		if !validCurrency(e.Currency) {
			errs = append(errs, fmt.Errorf("currency %q: want an ISO 4217 code, 3 upper-case letters", e.Currency))
		}
		a.Currency = e.Currency
	}

	if e.Country != "" {
		if len(e.Country) != 2 || !phonenumbers.GetSupportedRegions()[e.Country] {
			errs = append(errs, fmt.Errorf("country %q: want an ISO 3166-1 alpha-2 region code in upper case, such as BR", e.Country))
		}
		a.Country = e.Country
	}

	if e.AuthInternationalFrom != "" && zoneOK {
		at, err := parseInstant(e.AuthInternationalFrom, a.Location)
		if err != nil {
			errs = append(errs, fmt.Errorf("auth_international_from: %w", err))
		} else {
			a.AuthIntlFrom, a.HasAuthIntlFrom = at, true
		}
	}
	return a, errs
}

// parseID parses a Meta id: a positive decimal number.
func parseID(s string) (uint64, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a numeric id", s)
		}
	}
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a numeric id: %w", s, err)
	}
	if id == 0 {
		return 0, fmt.Errorf("%q: an id cannot be 0", s)
	}
	return id, nil
}

// loadZone loads an IANA zone. "Local" is refused: it would make billing
// depend on the machine.
func loadZone(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, errors.New(`"Local" is not allowed: name an IANA zone such as America/Sao_Paulo`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: %w", name, err)
	}
	return loc, nil
}

// parseInstant parses an RFC 3339 instant, or a YYYY-MM-DD date meaning
// midnight in loc, to Unix seconds.
func parseInstant(s string, loc *time.Location) (int64, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.Unix(), nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t.Unix(), nil
	}
	return 0, fmt.Errorf("%q: want an RFC 3339 instant (2025-02-01T00:00:00Z) or a date (2025-02-01)", s)
}

func validCurrency(cur string) bool {
	if len(cur) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if cur[i] < 'A' || cur[i] > 'Z' {
			return false
		}
	}
	return true
}
