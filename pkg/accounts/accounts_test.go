package accounts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, data string) *Book {
	t.Helper()
	b, err := Parse([]byte(data))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return b
}

func unix(t *testing.T, rfc3339 string) int64 {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		t.Fatal(err)
	}
	return ts.Unix()
}

// checkAccount compares an account with the wanted one, comparing the
// location by name.
func checkAccount(t *testing.T, got *Account, want Account) {
	t.Helper()
	if got == nil {
		t.Fatalf("account %d: nil", want.WABA)
	}
	if got.Location == nil || got.Location.String() != want.Timezone {
		t.Errorf("account %d: Location = %v, want %s", want.WABA, got.Location, want.Timezone)
	}
	g := *got
	g.Location, want.Location = nil, nil
	if g != want {
		t.Errorf("account %d = %+v, want %+v", want.WABA, g, want)
	}
}

func TestParseFullEntry(t *testing.T) {
	b := mustParse(t, `
accounts:
  - waba_id: "102938475610"
    portfolio_id: "5550001"
    timezone: America/Sao_Paulo
    currency: USD
    country: BR
    auth_international_from: 2025-02-01T00:00:00Z
`)
	checkAccount(t, b.Get(102938475610), Account{
		WABA: 102938475610, Portfolio: 5550001, Timezone: "America/Sao_Paulo", Currency: "USD",
		Country: "BR", AuthIntlFrom: unix(t, "2025-02-01T00:00:00Z"), HasAuthIntlFrom: true,
	})
	if got := len(b.Accounts()); got != 1 {
		t.Errorf("Accounts() has %d entries, want 1", got)
	}
}

func TestParseDefaults(t *testing.T) {
	b := mustParse(t, `
accounts:
  - waba_id: 102938475611   # unquoted id
  - waba_id: "7"
    currency: EUR
    auth_international_from: "2025-02-01T10:00:00+05:30"
`)
	checkAccount(t, b.Get(102938475611), Account{WABA: 102938475611, Portfolio: 102938475611, Timezone: "UTC", Currency: "USD"})
	checkAccount(t, b.Get(7), Account{WABA: 7, Portfolio: 7, Timezone: "UTC", Currency: "EUR",
		AuthIntlFrom: unix(t, "2025-02-01T04:30:00Z"), HasAuthIntlFrom: true})
}

func TestParseDateIsLocalMidnight(t *testing.T) {
	b := mustParse(t, `
accounts:
  - waba_id: 1
    timezone: America/Sao_Paulo
    auth_international_from: 2025-02-01
  - waba_id: 2
    timezone: Asia/Kolkata
    auth_international_from: "2024-07-01"
  - waba_id: 3
    auth_international_from: 2024-07-01
`)
	f := func(waba uint64, want string) {
		t.Helper()
		a := b.Get(waba)
		if !a.HasAuthIntlFrom || a.AuthIntlFrom != unix(t, want) {
			t.Errorf("account %d: AuthIntlFrom = %d (%v), want %s", waba, a.AuthIntlFrom, a.HasAuthIntlFrom, want)
		}
	}
	f(1, "2025-02-01T03:00:00Z") // UTC-3
	f(2, "2024-06-30T18:30:00Z") // UTC+5:30
	f(3, "2024-07-01T00:00:00Z") // default zone UTC
}

func TestGetUnknownWABA(t *testing.T) {
	for name, b := range map[string]*Book{
		"empty": Empty(),
		"file":  mustParse(t, "accounts:\n  - waba_id: 1\n    timezone: Asia/Tokyo\n"),
	} {
		t.Run(name, func(t *testing.T) {
			a := b.Get(424242)
			checkAccount(t, a, Account{WABA: 424242, Portfolio: 424242, Timezone: "UTC", Currency: "USD"})
			if again := b.Get(424242); again != a {
				t.Error("Get of an unknown WABA built a second default account")
			}
			if other := b.Get(424243); other.WABA != 424243 || other.Portfolio != 424243 {
				t.Errorf("Get(424243) = %+v", other)
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	for _, data := range []string{"", "# nothing yet\n", "accounts: []\n", "accounts:\n"} {
		b := mustParse(t, data)
		if len(b.Accounts()) != 0 {
			t.Errorf("Parse(%q) has accounts", data)
		}
	}
}

func TestParseErrors(t *testing.T) {
	f := func(data string, want ...string) {
		t.Helper()
		_, err := Parse([]byte(data))
		if err == nil {
			t.Fatalf("Parse: no error, want %q", want)
		}
		msg := err.Error()
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("error %q lacks %q", msg, w)
			}
		}
		if got := strings.Count(msg, "\n") + 1; got != len(want) {
			t.Errorf("error has %d lines, want %d:\n%s", got, len(want), msg)
		}
	}
	// Unknown keys are an error, at any level.
	f("accounts:\n  - waba_id: 1\n    time_zone: UTC\n", "line 3: field time_zone not found")
	f("acounts: []\n", "line 1: field acounts not found")
	// Every problem is reported together, with the entry index and waba_id.
	f(`
accounts:
  - waba_id: "12a"
  - portfolio_id: 5
  - waba_id: 3
    timezone: Mars/Olympus
    currency: usd
  - waba_id: 4
    country: XX
    auth_international_from: 2025-02-30
  - waba_id: 4
  - waba_id: 5
    country: br
    auth_international_from: "yesterday"
    extra: 1
  - waba_id: 6
    timezone: Local
  - waba_id: 0
    portfolio_id: -5
`,
		`accounts[0] (waba_id "12a"): waba_id: "12a" is not a numeric id`,
		`accounts[1] (waba_id ""): missing waba_id`,
		`accounts[2] (waba_id "3"): timezone: unknown time zone "Mars/Olympus"`,
		`accounts[2] (waba_id "3"): currency "usd"`,
		`accounts[3] (waba_id "4"): country "XX"`,
		`accounts[3] (waba_id "4"): auth_international_from: "2025-02-30"`,
		`accounts[5] (waba_id "5"): country "br"`,
		`accounts[5] (waba_id "5"): auth_international_from: "yesterday"`,
		`line 15: field extra not found`,
		`accounts[6] (waba_id "6"): timezone: "Local" is not allowed`,
		`accounts[7] (waba_id "0"): waba_id: "0": an id cannot be 0`,
		`accounts[7] (waba_id "0"): portfolio_id: "-5" is not a numeric id`,
	)
	// The duplicate is only found once the first entry is valid.
	f("accounts:\n  - waba_id: 4\n  - waba_id: \"4\"\n", `accounts[1] (waba_id "4"): duplicate waba_id, also accounts[0]`)
	f("accounts:\n  - {waba_id: 1}\n---\naccounts: []\n", "more than one YAML document")
	f("accounts: [\n", "decode accounts YAML")
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.yaml")
	if err := os.WriteFile(path, []byte("accounts:\n  - waba_id: 9\n    currency: BRL\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := b.Get(9).Currency; got != "BRL" {
		t.Errorf("currency = %s, want BRL", got)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}
}

func TestValidate(t *testing.T) {
	b := mustParse(t, "accounts:\n  - waba_id: 1\n  - waba_id: 2\n    currency: EUR\n  - waba_id: 3\n    currency: BRL\n")
	usdOnly := func(cur string) bool { return cur == "USD" }
	err := b.Validate(usdOnly)
	if err == nil {
		t.Fatal("Validate: no error for EUR and BRL without rate cards")
	}
	for _, w := range []string{"accounts[1] (waba_id 2): currency EUR has no rate card", "accounts[2] (waba_id 3): currency BRL has no rate card"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if err := b.Validate(func(string) bool { return true }); err != nil {
		t.Errorf("Validate with every currency: %v", err)
	}
	if err := Empty().Validate(func(string) bool { return false }); err == nil || !strings.Contains(err.Error(), "default currency USD") {
		t.Errorf("Validate(Empty, none) = %v, want default currency error", err)
	}
}

func BenchmarkGet(b *testing.B) {
	book, err := Parse([]byte("accounts:\n  - waba_id: 1\n  - waba_id: 2\n"))
	if err != nil {
		b.Fatal(err)
	}
	wabas := []uint64{1, 2, 102938475610, 102938475611, 102938475612}
	for _, w := range wabas {
		book.Get(w)
	}
	b.ReportAllocs()
	var sink *Account
	for i := 0; b.Loop(); i++ {
		sink = book.Get(wabas[i%len(wabas)])
	}
	_ = sink
}
