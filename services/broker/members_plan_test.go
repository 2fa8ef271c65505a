package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/testenv"
)

func TestMemberSessionsPlan(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	join := func(member string) *kmsg.JoinGroupRequest {
		r := kmsg.NewPtrJoinGroupRequest()
		r.Group, r.MemberID, r.SessionTimeoutMillis = "g", member, 6000
		return r
	}
	sync := func(member string, generation int32) *kmsg.SyncGroupRequest {
		r := kmsg.NewPtrSyncGroupRequest()
		r.Group, r.MemberID, r.Generation = "g", member, generation
		return r
	}
	heartbeat := func(member string) *kmsg.HeartbeatRequest {
		r := kmsg.NewPtrHeartbeatRequest()
		r.Group, r.MemberID = "g", member
		return r
	}
	type step struct {
		req kmsg.Request
		at  time.Time
	}
	type check struct {
		state string
		epoch int32
		at    time.Time
		want  []memberAction // silent is not compared
	}
	f := func(name string, steps []step, checks ...check) {
		t.Helper()
		s := newMemberSessions(nil, zap.NewNop(), nil)
		for _, st := range steps {
			s.observe(st.req, st.at)
		}
		for _, c := range checks {
			info := &kfake.GroupInfo{Group: "g", State: c.state, Epoch: c.epoch,
				Members: []kfake.GroupMember{{MemberID: "a"}, {MemberID: "b"}}}
			got := s.plan("g", info, c.at)
			for i := range got {
				got[i].silent = 0
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s: %s generation %d at +%s: actions %+v, want %+v", name, c.state, c.epoch, c.at.Sub(t0), got, c.want)
			}
		}
	}
	leave := func(member string, epoch int32) memberAction {
		return memberAction{leave: true, group: "g", member: member, epoch: epoch}
	}
	keepAlive := func(member string, epoch int32) memberAction {
		return memberAction{group: "g", member: member, epoch: epoch}
	}

	// b joined (empty member id: kfake gives it no timer) and never spoke
	// again; a heartbeats. b goes one session timeout after the
	// generation is seen stable, a stays.
	f("silent member of a stable group",
		[]step{{join(""), at(0)}, {join("a"), at(time.Second)}, {heartbeat("a"), at(9 * time.Second)}},
		check{"Stable", 2, at(2 * time.Second), nil},
		check{"Stable", 2, at(8 * time.Second), nil},
		check{"Stable", 2, at(8*time.Second + time.Millisecond), []memberAction{leave("b", 2)}},
		check{"Stable", 2, at(15*time.Second + time.Millisecond), []memberAction{leave("a", 2), leave("b", 2)}})

	// A new generation restarts the clock, as Kafka's does when the
	// rebalance completes.
	f("new generation",
		[]step{{join("a"), at(0)}, {join("b"), at(0)}},
		check{"Stable", 3, at(time.Second), nil},
		check{"Stable", 4, at(20 * time.Second), nil},
		check{"Stable", 4, at(26*time.Second + time.Millisecond), []memberAction{leave("a", 4), leave("b", 4)}})

	// Without a JoinGroup since the start (members restored from the data
	// dir), kfake's own timers apply.
	f("no session timeout known",
		[]step{{heartbeat("a"), at(0)}},
		check{"Stable", 1, at(time.Minute), nil})

	// Members waiting in JoinGroup of this generation are kept alive;
	// one whose JoinGroup belongs to an earlier round is not.
	s := newMemberSessions(nil, zap.NewNop(), nil)
	s.observe(join("a"), at(0)) // no cluster: recorded at epoch -1
	s.members[memberKey{"g", "a"}].epoch = 5
	s.observe(join("b"), at(0))
	s.members[memberKey{"g", "b"}].epoch = 4
	s.observe(heartbeat("a"), at(time.Second)) // ours: a still waits
	got := s.plan("g", &kfake.GroupInfo{Group: "g", State: "PreparingRebalance", Epoch: 5,
		Members: []kfake.GroupMember{{MemberID: "a"}, {MemberID: "b"}}}, at(10*time.Second))
	if want := []memberAction{keepAlive("a", 5)}; !reflect.DeepEqual(got, want) {
		t.Errorf("preparing: actions %+v, want %+v", got, want)
	}

	// Members waiting in SyncGroup of this generation are kept alive.
	f("waiting in SyncGroup",
		[]step{{join("a"), at(0)}, {sync("a", 6), at(time.Second)}, {sync("b", 5), at(time.Second)}},
		check{"CompletingRebalance", 6, at(10 * time.Second), []memberAction{keepAlive("a", 6)}})

	// A group that is gone is forgotten.
	s.plan("g", nil, at(time.Minute))
	if len(s.groups) != 0 || len(s.members) != 0 {
		t.Errorf("after the group is gone: %d groups, %d members remembered", len(s.groups), len(s.members))
	}
}

// The client memberSessions acts through logs in to a broker with SASL and
// TLS on.
func TestSessionClientOverSASLAndTLS(t *testing.T) {
	certs := testenv.NewCerts(t)
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mech := range saslMechanisms {
		cfg := defaultConfig(func(string) string { return "" })
		cfg.Addr = "127.0.0.1:0"
		cfg.SASLUser, cfg.SASLMechanism, cfg.SASLPasswordFile = "admin", mech, pwFile
		cfg.TLSCertFile, cfg.TLSKeyFile = certs.CertFile, certs.KeyFile
		opts, err := clusterOpts(cfg, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		cluster, err := kfake.NewCluster(opts...)
		if err != nil {
			t.Fatal(err)
		}
		clientOpts, err := sessionClientOpts(cfg)
		if err != nil {
			t.Fatal(err)
		}
		client, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()[0]), kgo.RequestRetries(0)}, clientOpts...)...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.MemberID, req.Generation = "g", "m", 1
		resp, err := client.Request(ctx, req)
		cancel()
		client.Close()
		cluster.Close()
		if err != nil {
			t.Errorf("%s over TLS: %v", mech, err)
			continue
		}
		// The group does not exist: the coordinator answers, it does
		// not refuse the client.
		if code := resp.(*kmsg.HeartbeatResponse).ErrorCode; code != kerr.GroupIDNotFound.Code && code != kerr.UnknownMemberID.Code {
			t.Errorf("%s over TLS: heartbeat answered %v", mech, kerr.ErrorForCode(code))
		}
	}
}
