package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/testenv"
)

var (
	chaosSeed = flag.Uint64("chaos.seed", 1, "seed of TestChaos's corpus order and faults")
	chaosLong = flag.Bool("chaos.long", false, "TestChaos: a larger corpus, more faults, longer outages (make chaos)")
)

// TestChaos runs the pipeline as separate role processes (normalize, three
// window instances, account, sink) on a private broker and ClickHouse, and
// while the corpus streams in it kills (SIGKILL) and restarts role
// processes, the broker and ClickHouse at seeded random moments. Then every
// table must equal the reference derivation: the same charges (ids, pricing
// types, amounts), conversations, and rollups, with plain count()/sum().
// Kills land at any moment, rebalances included: a member killed while it
// joins is expired by the broker after the session timeout (see
// services/broker's memberSessions). make test runs the short variant;
// `make chaos` runs it with -chaos.long for several seeds.
func TestChaos(t *testing.T) {
	timeout := 8 * time.Minute
	sets, faults, maxOutage := 8, 5, 4*time.Second
	clickhouseOutage := maxOutage
	if *chaosLong {
		timeout, sets, faults, maxOutage = 25*time.Minute, 40, 14, 30*time.Second
		clickhouseOutage = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	broker := testenv.NewBroker(t)
	ch := testenv.NewClickHouse(t)
	s := newStackOn(t, broker.Addr, ch.Addr)
	// The idle flush must outlast a broker outage: a partition that gets
	// nothing for WAMETER_IDLE_FLUSH releases everything it holds, and in a
	// replay compressed in time the records that resume after the outage
	// would then be late (dead-lettered, so the tables would differ by
	// design, not by loss). In real time the resumed events are newer.
	idleFlush := maxOutage + 8*time.Second
	s.env = append(s.env, "WAMETER_SESSION_TIMEOUT=6s", "WAMETER_PARTITIONS=6", "WAMETER_IDLE_FLUSH="+idleFlush.String())

	c := buildCorpusN(sets)
	want, _ := expected(t, c.records)
	cbp, pmp := splitEras(c.records)
	firstEra, _ := expected(t, cbp)

	type member struct {
		role string
		proc *testenv.Proc
	}
	var mu sync.Mutex
	members := []*member{{role: "sink"}, {role: "normalize"}, {role: "window"}, {role: "window"}, {role: "window"}, {role: "account"}}
	var allProcs []*testenv.Proc
	brokerProcs := []*testenv.Proc{broker.Proc()}
	for _, m := range members {
		m.proc = s.startRole(m.role)
		allProcs = append(allProcs, m.proc)
	}
	for _, m := range members {
		s.waitSynced(m.proc, m.role)
	}

	rng := rand.New(rand.NewPCG(*chaosSeed, 77))
	figures := map[string]int{}
	var outage time.Duration
	chaosDone := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(chaosDone)
		for i := 0; i < faults; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(500+rng.IntN(2500)) * time.Millisecond):
			}
			switch k := rng.IntN(6); {
			case k < 4: // a role process
				mu.Lock()
				m := members[rng.IntN(len(members))]
				mu.Unlock()
				if err := m.proc.Kill(); err != nil {
					t.Errorf("kill %s: %v", m.role, err)
					return
				}
				<-m.proc.Exited()
				figures["kill "+m.role]++
				t.Logf("chaos: killed %s (%s)", m.role, time.Now().Format("15:04:05.000"))
				time.Sleep(time.Duration(rng.IntN(2000)) * time.Millisecond)
				p := s.startRole(m.role)
				mu.Lock()
				m.proc = p
				allProcs = append(allProcs, p)
				mu.Unlock()
			case k == 4:
				d := time.Duration(1+rng.IntN(int(maxOutage/time.Second))) * time.Second
				broker.Kill()
				figures["kill broker"]++
				t.Logf("chaos: broker down for %s (%s)", d, time.Now().Format("15:04:05.000"))
				time.Sleep(d)
				outage += d
				broker.Restart()
				brokerProcs = append(brokerProcs, broker.Proc())
			default:
				d := time.Duration(1+rng.IntN(int(clickhouseOutage/time.Second))) * time.Second
				ch.Kill()
				figures["kill clickhouse"]++
				t.Logf("chaos: clickhouse down for %s (%s)", d, time.Now().Format("15:04:05.000"))
				time.Sleep(d)
				outage += d
				ch.Restart()
			}
		}
	}()

	s.produce(ctx, cbp, *chaosSeed)
	waitFor(t, "the CBP era's charges", 6*time.Minute, func() bool {
		n, err := s.tryCount(ctx, "SELECT count() FROM charges")
		return err == nil && n >= uint64(len(firstEra.Charges))
	})
	s.produce(ctx, pmp, *chaosSeed+1)
	close(stop)
	<-chaosDone
	waitFor(t, "all charges", 6*time.Minute, func() bool {
		n, err := s.tryCount(ctx, "SELECT count() FROM charges")
		return err == nil && n >= uint64(len(want.Charges))
	})
	time.Sleep(5 * time.Second)

	diffs := compareTables(ctx, s, want)
	for _, d := range diffs {
		t.Error(d)
	}
	mu.Lock()
	replayed := 0
	for _, p := range allProcs {
		replayed += replayedRecords(p.Log())
	}
	mu.Unlock()
	reasons, dlq := s.deadLetters(ctx)
	if reasons["late"] > 0 {
		// Faults must not make events late: the checkpoints keep the
		// watermarks, and the idle flush outlasts every outage.
		t.Errorf("%d events dead-lettered as late after faults (%v)", reasons["late"], reasons)
	}
	// Members the broker expired after their process died (kfake alone
	// would keep some of them, with their partitions).
	expired := 0
	for _, p := range brokerProcs {
		expired += strings.Count(p.Log(), "removing a group member silent past its session timeout")
	}
	kills := 0
	for _, n := range figures {
		kills += n
	}
	if kills == 0 {
		t.Fatal("no fault was injected: the run proves nothing")
	}
	t.Logf("chaos seed %d: %d faults survived %v, outages %s, %d records replayed from checkpoints, %d dead members expired by the broker, %d dead letters, %d differences; %d charges, %d conversations",
		*chaosSeed, kills, figures, outage, replayed, expired, dlq, len(diffs), len(want.Charges), len(want.Conversations))
}

// tryCount is count that reports an error instead of failing (ClickHouse may be down).
func (s *stack) tryCount(ctx context.Context, query string) (uint64, error) {
	var n uint64
	err := s.ch.QueryRow(ctx, query).Scan(&n)
	return n, err
}

// replayedRecords sums, over a process log's partition assignments, the
// input records read again to rebuild state (replay_until - start).
func replayedRecords(log string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `"partition assigned"`) || !strings.Contains(line, `"replay_until"`) {
			continue
		}
		var v struct {
			Start       int64 `json:"start"`
			ReplayUntil int64 `json:"replay_until"`
		}
		if json.Unmarshal([]byte(line), &v) == nil && v.ReplayUntil > v.Start {
			n += int(v.ReplayUntil - v.Start)
		}
	}
	return n
}

func trimAmount(a string) string {
	if strings.Contains(a, ".") {
		a = strings.TrimRight(strings.TrimRight(a, "0"), ".")
	}
	return a
}

func micros(m int64) string { return trimAmount(fmt.Sprintf("%d.%06d", m/1e6, m%1e6)) }

// compareTables compares every table with the reference and returns the
// differences, described.
func compareTables(ctx context.Context, s *stack, want billing.Result) []string {
	var diffs []string
	diff := func(table string, got, exp []string) {
		slices.Sort(got)
		slices.Sort(exp)
		if slices.Equal(got, exp) {
			return
		}
		var missing, extra []string
		for _, e := range exp {
			if _, ok := slices.BinarySearch(got, e); !ok {
				missing = append(missing, e)
			}
		}
		for _, g := range got {
			if _, ok := slices.BinarySearch(exp, g); !ok {
				extra = append(extra, g)
			}
		}
		diffs = append(diffs, fmt.Sprintf("%s: %d rows, want %d; missing %v; unexpected %v", table, len(got), len(exp), head(missing), head(extra)))
	}

	var exp, got []string
	for _, u := range want.Charges {
		id := u.ID()
		exp = append(exp, id.String()+" "+u.PricingType.String()+" "+micros(u.AmountMicro))
	}
	for _, c := range s.charges(ctx) {
		got = append(got, c.ID+" "+c.PricingType+" "+c.Amount)
	}
	diff("charges", got, exp)

	exp = exp[:0]
	for _, c := range want.Conversations {
		id := c.ID()
		exp = append(exp, id.String())
	}
	got = nil
	for _, c := range s.conversations(ctx) {
		got = append(got, strings.Fields(c)[0])
	}
	diff("conversations", got, exp)

	type spendKey struct{ waba, hour, cat, market, model, typ string }
	spend := map[spendKey][2]int64{}
	for _, u := range want.Charges {
		k := spendKey{fmt.Sprint(u.WABA), time.Unix(u.ChargedAt-u.ChargedAt%3600, 0).UTC().Format("2006-01-02 15:04:05"),
			u.Category.String(), u.Market, u.Model.String(), u.PricingType.String()}
		v := spend[k]
		spend[k] = [2]int64{v[0] + 1, v[1] + u.AmountMicro}
	}
	exp = exp[:0]
	for k, v := range spend {
		exp = append(exp, fmt.Sprintf("%v %d %s", k, v[0], micros(v[1])))
	}
	got = s.rows(ctx, `SELECT waba_id, toString(hour), category, market, pricing_model, pricing_type,
		toUInt64(sum(units)), toString(sum(amount)) FROM spend_hourly
		GROUP BY waba_id, hour, category, market, pricing_model, pricing_type`, func(f []string) string {
		return fmt.Sprintf("%v %s %s", spendKey{f[0], f[1], f[2], f[3], f[4], f[5]}, f[6], trimAmount(f[7]))
	})
	diff("spend_hourly", got, exp)

	type convKey struct{ waba, hour, cat, market, model string }
	convs := map[convKey]int{}
	for _, c := range want.Conversations {
		convs[convKey{fmt.Sprint(c.WABA), time.Unix(c.OpenedAt-c.OpenedAt%3600, 0).UTC().Format("2006-01-02 15:04:05"),
			c.Category.String(), c.Market, c.Model.String()}]++
	}
	exp = exp[:0]
	for k, n := range convs {
		exp = append(exp, fmt.Sprintf("%v %d", k, n))
	}
	got = s.rows(ctx, `SELECT waba_id, toString(hour), category, market, pricing_model, toString(toUInt64(sum(conversations)))
		FROM conversations_hourly GROUP BY waba_id, hour, category, market, pricing_model`, func(f []string) string {
		return fmt.Sprintf("%v %s", convKey{f[0], f[1], f[2], f[3], f[4]}, f[5])
	})
	diff("conversations_hourly", got, exp)
	return diffs
}

func head(s []string) []string {
	if len(s) > 5 {
		return append(s[:5:5], fmt.Sprintf("... %d more", len(s)-5))
	}
	return s
}

// rows runs a query whose columns are all strings or UInt64 and formats
// each row with f.
func (s *stack) rows(ctx context.Context, query string, f func([]string) string) []string {
	rows, err := s.ch.Query(ctx, query)
	if err != nil {
		s.t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols := rows.ColumnTypes()
	var out []string
	for rows.Next() {
		dst := make([]any, len(cols))
		for i, c := range cols {
			if c.DatabaseTypeName() == "UInt64" {
				dst[i] = new(uint64)
			} else {
				dst[i] = new(string)
			}
		}
		if err := rows.Scan(dst...); err != nil {
			s.t.Fatal(err)
		}
		fields := make([]string, len(dst))
		for i, d := range dst {
			switch v := d.(type) {
			case *uint64:
				fields[i] = fmt.Sprint(*v)
			case *string:
				fields[i] = *v
			}
		}
		out = append(out, f(fields))
	}
	return out
}
