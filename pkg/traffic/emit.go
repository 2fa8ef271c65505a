package traffic

// Kinds of pending record.
const (
	recSend uint8 = iota + 1
	recStatus
	recInbound
	recRaw // a copy of an emitted record: Meta's retry
)

// pending is a record waiting for its arrival time, kept small and rendered
// only when it is emitted.
type pending struct {
	kind  uint8
	sub   uint8 // send: message kind; status: status; inbound: inbound type
	idx   uint8 // template or text index
	ref   bool  // inbound: carries a referral
	phone uint8
	acct  uint16
	cust  uint32
	ts    int64  // event timestamp, Unix seconds
	msg   uint64 // message sequence number (its wamid)
	ctx   uint64 // inbound: the message replied to (0: none)
	meta  metaView
	raw   *rawRecord
}

// rawRecord is an already rendered record, for retries.
type rawRecord struct {
	topic   string
	key     []byte
	value   []byte
	headers map[string]string
}

// maxBatch is the most statuses one webhook payload carries here.
const maxBatch = 5

// batchWindow is how close in time statuses must be to share a payload.
const batchWindow = 1000

// flush emits the pending records that arrive at or before upTo, the time of
// the next action, less batchWindow: every record that could join their
// batch exists already (actions only add records after their own time).
func (g *generator) flush(upTo int64) error {
	for len(g.records) > 0 && g.records.top().at <= upTo-batchWindow {
		if err := g.emitNext(upTo); err != nil {
			return err
		}
	}
	return nil
}

// emitNext renders and emits the earliest pending record, batching the
// statuses that follow it within a second when the dice say so. Only
// records due by upTo may join a batch: a later one could still be preceded
// by a record not generated yet.
func (g *generator) emitNext(upTo int64) error {
	it := g.records.pop()
	p := &g.slab[it.slot]
	at := it.at
	rec := Record{At: at}
	switch p.kind {
	case recRaw:
		rec.Topic, rec.Key, rec.Value, rec.Headers = p.raw.topic, p.raw.key, p.raw.value, p.raw.headers
		g.release(it.slot)
		return g.send(rec, false)
	case recSend:
		rec.Topic = TopicSends
		g.key = appendUint(g.key[:0], g.accts[p.acct].numbers[p.cust])
		g.buf = g.renderSend(g.buf[:0], p)
		g.release(it.slot)
		rec.Key, rec.Value = g.key, g.buf
		return g.send(rec, false)
	}
	g.batch = append(g.batch[:0], it.slot)
	if p.kind == recStatus && g.r.chance(g.cfg.BatchRate) {
		for len(g.batch) < maxBatch && len(g.records) > 0 {
			next := g.records.top()
			q := &g.slab[next.slot]
			if next.at > upTo || q.kind != recStatus || q.acct != p.acct || q.phone != p.phone || next.at-it.at > batchWindow {
				break
			}
			g.records.pop()
			g.batch = append(g.batch, next.slot)
			at = next.at
		}
	}
	rec.Topic, rec.At = TopicWebhooks, at
	as := &g.accts[p.acct]
	rec.Headers = as.headers[p.phone]
	g.key = appendUint(g.key[:0], as.numbers[p.cust])
	g.buf = g.renderWebhook(g.buf[:0], g.batch)
	for _, s := range g.batch {
		g.release(s)
	}
	rec.Key, rec.Value = g.key, g.buf
	return g.send(rec, true)
}

// send hands rec to the callback, then maybe schedules Meta's retry of it
// and a malformed record.
func (g *generator) send(rec Record, retriable bool) error {
	if err := g.emit(rec); err != nil {
		return err
	}
	g.lastEmitted = rec.At
	if retriable && g.r.chance(g.cfg.RetryRate) {
		raw := &rawRecord{topic: rec.Topic, key: append([]byte(nil), rec.Key...),
			value: append([]byte(nil), rec.Value...), headers: rec.Headers}
		g.push(pending{kind: recRaw, raw: raw}, rec.At+g.r.between(3_000, 600_000))
	}
	g.malformed.emitted++
	if m := &g.malformed; m.left > 0 && float64(m.emitted) >= (float64(m.n)+0.5)*m.every {
		return g.injectMalformed(rec.At)
	}
	return nil
}

func appendUint(dst []byte, v uint64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(dst, tmp[i:]...)
}
