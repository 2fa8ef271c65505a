package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.uber.org/zap"
)

// memberSessions gives the classic consumer groups of kfake the session
// semantics of Apache Kafka, which kafka-go relies on: a member that stops
// talking is removed one session timeout after its last request, and a
// member waiting for its JoinGroup or SyncGroup answer is not. kfake
// (v0.0.0-20260918054303-01f206a7e32c, the newest there is) gets both wrong:
//
//   - A member that has no session timer is never expired. kfake arms a
//     member's session timer when it heartbeats or when an answer to it is
//     written (group.reply calls updateHeartbeat only if the write succeeded),
//     and a member that joins with an empty member id (JoinGroup v1/v2, what
//     kafka-go sends) has no timer until then. If its process dies while that
//     first JoinGroup waits for the other members to rejoin, the rebalance
//     still counts it as joined, the leader is told about it and assigns it
//     partitions, the answer to it cannot be written (so no timer), and the
//     leader's SyncGroup makes the group Stable, which also stops the only
//     other deadline (the pending-sync timer). Nothing removes the member
//     until some other member triggers a rebalance, and its partitions are
//     consumed by nobody. kafka-go produces the same kind of member without
//     a kill when it gives up on a parked JoinGroup (its connection deadline,
//     Timeout + RebalanceTimeout) and joins again with a new member id.
//   - A member's session timer fires while the member waits in JoinGroup or
//     SyncGroup (its heartbeats stop while it rebalances, and a slow member
//     can hold the rebalance past the session timeout): kfake removes the
//     member and drops its parked request unanswered, so a live client hangs
//     until its own request deadline. Kafka keeps such members alive and
//     leaves stragglers to the rebalance timeout. Members restored from the
//     data dir after a clean restart hit the same path.
//
// memberSessions watches the group requests (JoinGroup, SyncGroup,
// Heartbeat, OffsetCommit, LeaveGroup) through kfake's control hooks, which
// observe and do not handle them, and acts through ordinary requests to its
// own listener: in a Stable group it sends LeaveGroup for a member that sent
// nothing for longer than the group's session timeout (measured from the
// later of its last request and the moment the generation was seen stable,
// as Kafka starts the session clock when the rebalance completes), and it
// sends a heartbeat on behalf of a member whose JoinGroup or SyncGroup of the
// current generation is still waiting, which resets kfake's timer for it.
// kfake's own timers still work for members that have them; this only
// covers the cases above.
type memberSessions struct {
	cluster *kfake.Cluster
	logger  *zap.Logger
	request func(context.Context, kmsg.Request) (kmsg.Response, error)
	close   func()

	mu      sync.Mutex
	groups  map[string]*groupSession
	members map[memberKey]*memberSession

	stopOnce sync.Once
	stopped  chan struct{}
	done     chan struct{}
}

type groupSession struct {
	sessionTimeout time.Duration // the longest a JoinGroup asked for
	stableEpoch    int32         // generation last seen Stable
	stableSince    time.Time     // when it was first seen Stable
}

type memberKey struct{ group, member string }

type memberSession struct {
	last time.Time // last request naming the member
	// waiting is the key of the member's last JoinGroup or SyncGroup
	// (kmsg.JoinGroup, kmsg.SyncGroup), -1 after any other request but
	// a heartbeat; epoch is the group's generation when it arrived
	// (SyncGroup: the generation it syncs).
	waiting int16
	epoch   int32
}

// memberSweepInterval is how often the groups are checked. kfake's minimum
// session timeout is 6s.
const memberSweepInterval = 500 * time.Millisecond

// startMemberSessions hooks into cluster's group requests and starts the
// sweep; addr is the cluster's listener, opts go to the client it sends its
// LeaveGroup and Heartbeat requests with (SASL, TLS). stop must be called
// before cluster.Close.
func startMemberSessions(cluster *kfake.Cluster, addr string, logger *zap.Logger, opts ...kgo.Opt) (*memberSessions, error) {
	client, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ClientID("wameter-broker-sessions"),
		kgo.RequestRetries(1),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	s := newMemberSessions(cluster, logger, client.Request)
	s.close = client.Close
	for _, key := range []kmsg.Key{kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat, kmsg.OffsetCommit, kmsg.LeaveGroup} {
		cluster.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
			cluster.KeepControl()
			s.observe(req, time.Now())
			return nil, nil, false
		})
	}
	go s.run()
	return s, nil
}

// sessionClientOpts are the options of the client memberSessions talks to
// its own listener with: the superuser's SASL login, and TLS that accepts
// only the broker's own certificate.
func sessionClientOpts(cfg Config) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if cfg.SASLUser != "" {
		pw, err := cfg.password()
		if err != nil {
			return nil, err
		}
		switch cfg.SASLMechanism {
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: cfg.SASLUser, Pass: string(pw)}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: cfg.SASLUser, Pass: string(pw)}.AsSha512Mechanism()))
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: cfg.SASLUser, Pass: string(pw)}.AsMechanism()))
		default:
			return nil, fmt.Errorf("sasl mechanism %q", cfg.SASLMechanism)
		}
	}
	if cfg.TLSCertFile != "" {
		pair, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls key pair: %w", err)
		}
		own := pair.Certificate[0]
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{
			MinVersion: tls.VersionTLS12,
			// The peer is this process: its certificate is known
			// exactly, whatever names it carries or CA signed it.
			InsecureSkipVerify: true,
			VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
				if len(rawCerts) == 0 || !bytes.Equal(rawCerts[0], own) {
					return errors.New("not the broker's own certificate")
				}
				return nil
			},
		}))
	}
	return opts, nil
}

func newMemberSessions(cluster *kfake.Cluster, logger *zap.Logger, request func(context.Context, kmsg.Request) (kmsg.Response, error)) *memberSessions {
	return &memberSessions{
		cluster: cluster,
		logger:  logger.Named("sessions"),
		request: request,
		groups:  make(map[string]*groupSession),
		members: make(map[memberKey]*memberSession),
		stopped: make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// stop ends the sweep and waits for it; the control hooks stay but only
// record.
func (s *memberSessions) stop() {
	s.stopOnce.Do(func() {
		close(s.stopped)
		<-s.done
		if s.close != nil {
			s.close()
		}
	})
}

// observe records a group request. It runs in kfake's control hook, before
// kfake handles the request.
func (s *memberSessions) observe(req kmsg.Request, now time.Time) {
	switch req := req.(type) {
	case *kmsg.JoinGroupRequest:
		epoch := int32(-1)
		if req.MemberID != "" && s.cluster != nil {
			// kfake serves admin calls while a control hook runs.
			if info := s.cluster.GroupInfo(req.Group); info != nil {
				epoch = info.Epoch
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		g := s.groups[req.Group]
		if g == nil {
			g = &groupSession{stableEpoch: -1}
			s.groups[req.Group] = g
		}
		g.sessionTimeout = max(g.sessionTimeout, time.Duration(req.SessionTimeoutMillis)*time.Millisecond)
		if req.MemberID != "" {
			s.seen(req.Group, req.MemberID, now, int16(kmsg.JoinGroup), epoch)
		}
	case *kmsg.SyncGroupRequest:
		s.mu.Lock()
		defer s.mu.Unlock()
		s.seen(req.Group, req.MemberID, now, int16(kmsg.SyncGroup), req.Generation)
	case *kmsg.HeartbeatRequest:
		s.mu.Lock()
		defer s.mu.Unlock()
		// A heartbeat leaves a waiting JoinGroup or SyncGroup waiting:
		// ours are sent for members that wait.
		if m := s.members[memberKey{req.Group, req.MemberID}]; m != nil {
			m.last = now
		} else {
			s.seen(req.Group, req.MemberID, now, -1, -1)
		}
	case *kmsg.OffsetCommitRequest:
		s.mu.Lock()
		defer s.mu.Unlock()
		s.seen(req.Group, req.MemberID, now, -1, -1)
	case *kmsg.LeaveGroupRequest:
		s.mu.Lock()
		defer s.mu.Unlock()
		s.seen(req.Group, req.MemberID, now, -1, -1)
		for _, m := range req.Members {
			s.seen(req.Group, m.MemberID, now, -1, -1)
		}
	}
}

func (s *memberSessions) seen(group, member string, now time.Time, waiting int16, epoch int32) {
	if member == "" {
		return
	}
	k := memberKey{group, member}
	m := s.members[k]
	if m == nil {
		m = &memberSession{}
		s.members[k] = m
	}
	m.last, m.waiting, m.epoch = now, waiting, epoch
}

func (s *memberSessions) run() {
	defer close(s.done)
	t := time.NewTicker(memberSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopped:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// memberAction is a request the sweep sends for a member.
type memberAction struct {
	leave  bool // LeaveGroup, else Heartbeat
	group  string
	member string
	epoch  int32
	silent time.Duration // leave: how long the member has been silent
}

func (s *memberSessions) sweep() {
	s.mu.Lock()
	names := slices.Sorted(maps.Keys(s.groups))
	s.mu.Unlock()
	for _, name := range names {
		info := s.cluster.GroupInfo(name)
		for _, a := range s.plan(name, info, time.Now()) {
			s.act(a)
		}
	}
}

// plan updates what is known of group from info (nil: the group is gone)
// and returns the requests to send for its members.
func (s *memberSessions) plan(group string, info *kfake.GroupInfo, now time.Time) []memberAction {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[group]
	if g == nil {
		return nil
	}
	if info == nil {
		delete(s.groups, group)
		for k := range s.members {
			if k.group == group {
				delete(s.members, k)
			}
		}
		return nil
	}
	present := make(map[string]bool, len(info.Members))
	var actions []memberAction
	for _, im := range info.Members {
		present[im.MemberID] = true
		m := s.members[memberKey{group, im.MemberID}]
		switch info.State {
		case "PreparingRebalance":
			if m != nil && m.waiting == int16(kmsg.JoinGroup) && m.epoch == info.Epoch {
				actions = append(actions, memberAction{group: group, member: im.MemberID, epoch: info.Epoch})
			}
		case "CompletingRebalance":
			if m != nil && m.waiting == int16(kmsg.SyncGroup) && m.epoch == info.Epoch {
				actions = append(actions, memberAction{group: group, member: im.MemberID, epoch: info.Epoch})
			}
		case "Stable":
			if g.sessionTimeout <= 0 {
				continue // no JoinGroup seen since we started: kfake's timers restored from the data dir apply
			}
			if info.Epoch != g.stableEpoch {
				g.stableEpoch, g.stableSince = info.Epoch, now
			}
			last := g.stableSince
			if m != nil && m.last.After(last) {
				last = m.last
			}
			if silent := now.Sub(last); silent > g.sessionTimeout {
				actions = append(actions, memberAction{leave: true, group: group, member: im.MemberID, epoch: info.Epoch, silent: silent})
			}
		}
	}
	// Forget members that are gone, once they cannot be a late request
	// away from coming back.
	for k, m := range s.members {
		if k.group == group && !present[k.member] && now.Sub(m.last) > 2*g.sessionTimeout+time.Minute {
			delete(s.members, k)
		}
	}
	return actions
}

func (s *memberSessions) act(a memberAction) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	logger := s.logger.With(zap.String("group", a.group), zap.String("member", a.member), zap.Int32("generation", a.epoch))
	if !a.leave {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.Generation, req.MemberID = a.group, a.epoch, a.member
		resp, err := s.request(ctx, req)
		if err == nil {
			err = kerr.ErrorForCode(resp.(*kmsg.HeartbeatResponse).ErrorCode)
		}
		if err != nil && !errors.Is(err, kerr.RebalanceInProgress) {
			logger.Debug("keep waiting member alive", zap.Error(err))
		}
		return
	}
	logger.Warn("removing a group member silent past its session timeout", zap.Duration("silent", a.silent))
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group, req.MemberID = a.group, a.member
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = a.member
	lm.Reason = kmsg.StringPtr("session timeout")
	req.Members = []kmsg.LeaveGroupRequestMember{lm}
	resp, err := s.request(ctx, req)
	if err == nil {
		lresp := resp.(*kmsg.LeaveGroupResponse)
		err = kerr.ErrorForCode(lresp.ErrorCode)
		for _, rm := range lresp.Members {
			err = errors.Join(err, kerr.ErrorForCode(rm.ErrorCode))
		}
	}
	if err != nil {
		logger.Warn("remove silent group member", zap.Error(err))
	}
}
