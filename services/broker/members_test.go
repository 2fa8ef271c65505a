package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wameter/wameter/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Group timing of the members below: kfake's minimum session timeout, and a
// rebalance timeout long enough that kfake's own rebalance and pending-sync
// deadlines cannot stand in for the session timeout.
const (
	memberSessionTimeout   = 6 * time.Second
	memberRebalanceTimeout = 60 * time.Second
	memberPartitions       = 6
	memberTopic            = "t"
)

// TestKilledMemberExpires checks what Apache Kafka guarantees and kafka-go
// relies on: a group member whose process died (its connections closed, no
// LeaveGroup) is expired after its session timeout, whatever moment it died
// at, and the survivor's next generation holds every partition. Members
// speak the classic protocol at the versions kafka-go uses (JoinGroup v1,
// SyncGroup v0, Heartbeat v0), over connections the test closes to play a
// SIGKILL.
func TestKilledMemberExpires(t *testing.T) {
	t.Parallel()
	broker := testenv.Broker(t)
	cases := []struct {
		name string
		// kill brings member b to the chosen point with survivor a in
		// the group, closes b's connection and returns once a leads a
		// stable generation.
		kill func(t *testing.T, a *member, b *member)
	}{
		{"while its JoinGroup waits for the rebalance", func(t *testing.T, a, b *member) {
			b.sendJoin(t) // parked until a rejoins
			a.heartbeatUntilRebalance(t)
			b.close() // dies waiting for the JoinGroup answer
			a.joinAndSync(t)
		}},
		{"after its JoinGroup answer, before SyncGroup", func(t *testing.T, a, b *member) {
			b.sendJoin(t)
			a.heartbeatUntilRebalance(t)
			a.sendJoin(t)
			b.recvJoin(t)
			b.close()
			a.recvJoin(t)
			a.sync(t)
		}},
		{"mid-generation", func(t *testing.T, a, b *member) {
			b.sendJoin(t)
			a.heartbeatUntilRebalance(t)
			a.sendJoin(t)
			b.recvJoin(t)
			a.recvJoin(t)
			b.sendSync(t)
			a.sync(t)
			b.recvSync(t)
			b.heartbeat(t)
			b.close()
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			group := fmt.Sprintf("killed-member-%d-%d", i, time.Now().UnixNano())
			a := newMember(t, broker, group)
			a.joinAndSync(t)
			if got := a.assigned(); got != memberPartitions {
				t.Fatalf("first member alone holds %d of %d partitions", got, memberPartitions)
			}
			b := newMember(t, broker, group)
			tc.kill(t, a, b)
			waitAlone(t, a, time.Now())
		})
	}
}

// TestMembersAfterBrokerRestart kills or stops the broker while two members
// are in a stable group, lets only one come back, and checks that it ends up
// with every partition within the session timeout.
func TestMembersAfterBrokerRestart(t *testing.T) {
	t.Parallel()
	for _, clean := range []bool{false, true} {
		name := "kill -9"
		if clean {
			name = "clean stop (members restored from the data dir)"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			broker := testenv.NewBroker(t)
			group := "restart"
			a := newMember(t, broker.Addr, group)
			a.joinAndSync(t)
			b := newMember(t, broker.Addr, group)
			b.sendJoin(t)
			a.heartbeatUntilRebalance(t)
			a.sendJoin(t)
			b.recvJoin(t)
			a.recvJoin(t)
			b.sendSync(t)
			a.sync(t)
			b.recvSync(t)
			for range 2 {
				if clean {
					broker.Stop()
				} else {
					broker.Kill()
				}
				b.close()
				broker.Restart()
			}
			start := time.Now()
			// a is back as kafka-go comes back: it finds its connection
			// gone, rejoins with its member id, and starts afresh when
			// the broker no longer knows that id.
			a.reconnect(t)
			waitAlone(t, a, start)
		})
	}
}

// waitAlone keeps a in the group as kafka-go would (heartbeats every
// second, rejoins on a rebalance) until a leads a generation in which it is
// the only member, which must happen within the session timeout plus a few
// heartbeats after since.
func waitAlone(t *testing.T, a *member, since time.Time) {
	t.Helper()
	deadline := since.Add(memberSessionTimeout + 10*time.Second)
	for len(a.members) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%s after the other member died, generation %d still has members %v: %d of %d partitions are assigned to the live member",
				time.Since(since).Round(time.Millisecond), a.generation, a.members, a.assigned(), memberPartitions)
		}
		time.Sleep(time.Second)
		err := a.tryHeartbeat()
		switch {
		case err == nil:
		case errors.Is(err, kerr.RebalanceInProgress):
			a.joinAndSync(t)
		case errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.IllegalGeneration):
			a.id = ""
			a.joinAndSync(t)
		default:
			t.Fatalf("heartbeat: %v", err)
		}
	}
	if got := a.assigned(); got != memberPartitions {
		t.Fatalf("the live member holds %d of %d partitions", got, memberPartitions)
	}
	t.Logf("the live member holds every partition %s after the other died (generation %d)", time.Since(since).Round(time.Millisecond), a.generation)
}

// member is a classic-protocol group member on one raw connection, acting as
// its own range assignor when it leads.
type member struct {
	addr, group string
	conn        net.Conn
	corr        int32
	format      *kmsg.RequestFormatter

	id         string
	generation int32
	members    []string // of the last generation, when this member led it
	assignment []int32
}

func newMember(t *testing.T, addr, group string) *member {
	m := &member{addr: addr, group: group, format: kmsg.NewRequestFormatter(kmsg.FormatterClientID("members-test"))}
	m.dial(t)
	t.Cleanup(m.close)
	return m
}

func (m *member) dial(t *testing.T) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if m.conn, err = net.DialTimeout("tcp", m.addr, time.Second); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("dial %s: %v", m.addr, err)
	}
}

func (m *member) close() {
	if m.conn != nil {
		m.conn.Close()
	}
}

// reconnect plays a client whose connection broke: a new connection and a
// rejoin under the old member id.
func (m *member) reconnect(t *testing.T) {
	t.Helper()
	m.close()
	m.dial(t)
	m.sendJoin(t)
	if err := m.tryRecvJoin(); errors.Is(err, kerr.UnknownMemberID) {
		m.id = ""
		m.sendJoin(t)
		m.recvJoin(t)
	} else if err != nil {
		t.Fatalf("join group: %v", err)
	}
	m.sync(t)
}

func (m *member) send(t *testing.T, req kmsg.Request) {
	t.Helper()
	m.corr++
	if err := m.conn.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.conn.Write(m.format.AppendRequest(nil, req, m.corr)); err != nil {
		t.Fatalf("send %s: %v", kmsg.NameForKey(req.Key()), err)
	}
}

func (m *member) recv(resp kmsg.Response, wait time.Duration) error {
	if err := m.conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(m.conn, size[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(m.conn, body); err != nil {
		return err
	}
	if len(body) < 4 {
		return fmt.Errorf("short response")
	}
	// Only non-flexible versions are used: the header is the correlation id.
	return resp.ReadFrom(body[4:])
}

func (m *member) sendJoin(t *testing.T) {
	t.Helper()
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{memberTopic}
	proto := kmsg.NewJoinGroupRequestProtocol()
	proto.Name = "range"
	proto.Metadata = meta.AppendTo(nil)
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 1
	req.Group = m.group
	req.MemberID = m.id
	req.SessionTimeoutMillis = int32(memberSessionTimeout / time.Millisecond)
	req.RebalanceTimeoutMillis = int32(memberRebalanceTimeout / time.Millisecond)
	req.ProtocolType = "consumer"
	req.Protocols = []kmsg.JoinGroupRequestProtocol{proto}
	m.send(t, req)
}

func (m *member) recvJoin(t *testing.T) {
	t.Helper()
	if err := m.tryRecvJoin(); err != nil {
		t.Fatalf("join group: %v", err)
	}
}

func (m *member) tryRecvJoin() error {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = 1
	if err := m.recv(resp, memberRebalanceTimeout+5*time.Second); err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	m.id, m.generation = resp.MemberID, resp.Generation
	m.members = nil
	if resp.LeaderID == resp.MemberID {
		for _, rm := range resp.Members {
			m.members = append(m.members, rm.MemberID)
		}
		slices.Sort(m.members)
	}
	return nil
}

// sendSync sends SyncGroup; as the leader with the range assignment over
// the members of its JoinGroup answer.
func (m *member) sendSync(t *testing.T) {
	t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.Generation, req.MemberID = m.group, m.generation, m.id
	for i, id := range m.members {
		a := kmsg.NewConsumerMemberAssignment()
		var parts []int32
		for p := int32(0); p < memberPartitions; p++ {
			if int(p)*len(m.members)/memberPartitions == i {
				parts = append(parts, p)
			}
		}
		a.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: memberTopic, Partitions: parts}}
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = id, a.AppendTo(nil)
		req.GroupAssignment = append(req.GroupAssignment, ga)
	}
	m.send(t, req)
}

func (m *member) recvSync(t *testing.T) {
	t.Helper()
	resp := kmsg.NewPtrSyncGroupResponse()
	if err := m.recv(resp, memberRebalanceTimeout+5*time.Second); err != nil {
		t.Fatalf("sync group: %v", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("sync group: %v", err)
	}
	a := kmsg.NewConsumerMemberAssignment()
	if err := a.ReadFrom(resp.MemberAssignment); err != nil {
		t.Fatalf("sync group: assignment: %v", err)
	}
	m.assignment = nil
	for _, at := range a.Topics {
		m.assignment = append(m.assignment, at.Partitions...)
	}
}

func (m *member) sync(t *testing.T) {
	t.Helper()
	m.sendSync(t)
	m.recvSync(t)
}

func (m *member) joinAndSync(t *testing.T) {
	t.Helper()
	m.sendJoin(t)
	m.recvJoin(t)
	m.sync(t)
}

func (m *member) tryHeartbeat() error {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.Generation, req.MemberID = m.group, m.generation, m.id
	m.corr++
	if err := m.conn.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := m.conn.Write(m.format.AppendRequest(nil, req, m.corr)); err != nil {
		return err
	}
	resp := kmsg.NewPtrHeartbeatResponse()
	if err := m.recv(resp, 5*time.Second); err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.ErrorCode)
}

func (m *member) heartbeat(t *testing.T) {
	t.Helper()
	if err := m.tryHeartbeat(); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
}

// heartbeatUntilRebalance heartbeats every 200ms until the coordinator
// answers that a rebalance is in progress.
func (m *member) heartbeatUntilRebalance(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		switch err := m.tryHeartbeat(); {
		case err == nil:
		case errors.Is(err, kerr.RebalanceInProgress):
			return
		default:
			t.Fatalf("heartbeat: %v", err)
		}
	}
	t.Fatal("no rebalance within 10s of a second member joining")
}

func (m *member) assigned() int { return len(m.assignment) }
