package traffic

// Message kinds of outbound messages (pending.sub of a send record).
const (
	mkMarketing uint8 = iota + 1
	mkUtility
	mkAuthentication
	mkText
	mkInteractive
)

// Status kinds (pending.sub of a status).
const (
	stSent uint8 = iota + 1
	stDelivered
	stRead
	stFailed
)

// Inbound message types (pending.sub of an inbound message).
const (
	inText uint8 = iota + 1
	inButton
	inButtonReply
	inListReply
	inImage
	inReaction
)

const (
	second = int64(1000)
	minute = 60 * second
	hour   = 60 * minute
)

// script runs step th.step of the thread at now, sets th.step to the next
// one and returns the delay to it in ms, or -1 when the thread ends. The
// comments give each step's share; meanMessages must follow them.
func (g *generator) script(th *thread, now int64) int64 {
	r := g.r
	switch th.kind {
	case thMarketing: // 1 + 0.2*(2 + 0.5*2) = 1.6 messages
		switch th.step {
		case 0:
			g.outbound(th, now, mkMarketing)
			if r.chance(0.2) {
				return g.next(th, 1, 20*second+int64(r.exp(float64(15*minute))))
			}
		case 1:
			g.inbound(th, now, inButton, false)
			return g.next(th, 2, r.between(30*second, 5*minute))
		case 2:
			g.outbound(th, now, mkText)
			if r.chance(0.5) {
				return g.next(th, 3, 10*second+int64(r.exp(float64(3*minute))))
			}
		case 3:
			g.inbound(th, now, inText, false)
			return g.next(th, 4, r.between(20*second, 3*minute))
		case 4:
			g.outbound(th, now, mkInteractive)
		}
	case thUtility: // 1 + 0.3 + 0.7*0.12*2 = 1.47
		switch th.step {
		case 0:
			g.outbound(th, now, mkUtility)
			switch {
			case r.chance(0.3): // the next update of the same order
				return g.next(th, 1, r.between(1*hour, 8*hour))
			case r.chance(0.12): // a question about it
				return g.next(th, 2, 15*second+int64(r.exp(float64(10*minute))))
			}
		case 1:
			g.outbound(th, now, mkUtility)
		case 2:
			g.inbound(th, now, inText, false)
			return g.next(th, 3, r.between(30*second, 10*minute))
		case 3:
			g.outbound(th, now, mkText)
		}
	case thAuthentication: // 1.08
		switch th.step {
		case 0:
			g.outbound(th, now, mkAuthentication)
			if r.chance(0.08) { // "resend code"
				return g.next(th, 1, r.between(60*second, 3*minute))
			}
		case 1:
			g.outbound(th, now, mkAuthentication)
		}
	case thService: // 3 + 0.7*(2 + 0.3) = 4.61
		switch th.step {
		case 0:
			typ := inText
			if r.chance(0.15) {
				typ = inImage
			}
			g.inbound(th, now, typ, false)
			return g.next(th, 1, r.between(20*second, 10*minute))
		case 1:
			g.outbound(th, now, mkText)
			return g.next(th, 2, r.between(30*second, 5*minute))
		case 2:
			g.outbound(th, now, mkInteractive)
			if r.chance(0.7) {
				return g.next(th, 3, 5*second+int64(r.exp(float64(2*minute))))
			}
		case 3:
			g.inbound(th, now, inButtonReply, false)
			return g.next(th, 4, r.between(10*second, 2*minute))
		case 4:
			kind := mkText
			if r.chance(0.4) { // e.g. the order confirmation, inside the window
				kind = mkUtility
			}
			g.outbound(th, now, kind)
			if r.chance(0.3) {
				return g.next(th, 5, r.between(1*minute, 30*minute))
			}
		case 5:
			typ := inText
			if r.chance(0.5) {
				typ = inReaction
			}
			g.inbound(th, now, typ, false)
		}
	case thReferral: // 4 + 0.6 = 4.6
		switch th.step {
		case 0:
			g.inbound(th, now, inText, true)
			return g.next(th, 1, r.between(30*second, 10*minute))
		case 1:
			g.outbound(th, now, mkInteractive)
			return g.next(th, 2, 10*second+int64(r.exp(float64(5*minute))))
		case 2:
			g.inbound(th, now, inListReply, false)
			return g.next(th, 3, r.between(20*second, 3*minute))
		case 3:
			g.outbound(th, now, mkText)
			if r.chance(0.6) { // the offer, inside the 72h free entry point window
				return g.next(th, 4, r.between(2*hour, 40*hour))
			}
		case 4:
			g.outbound(th, now, mkMarketing)
		}
	}
	return -1
}

func (g *generator) next(th *thread, step uint8, delay int64) int64 {
	th.step = step
	return delay
}

func (g *generator) phoneOf(th *thread) uint8 {
	return uint8(th.cust % uint32(len(g.accts[th.acct].a.PhoneNumberIDs)))
}

// outbound sends a message of kind at now: its send record and statuses,
// with Meta's pricing as of its delivery.
func (g *generator) outbound(th *thread, now int64, kind uint8) {
	r, cfg := g.r, g.cfg
	g.msgSeq++
	th.lastOut = g.msgSeq
	base := pending{acct: th.acct, cust: th.cust, phone: g.phoneOf(th), msg: g.msgSeq}

	sentAt := now + r.between(150, 1_500)
	failed := r.chance(cfg.FailRate)
	var deliveredAt, readAt int64
	var skipDelivered bool
	if !failed {
		if r.chance(cfg.OfflineRate) {
			deliveredAt = sentAt + second + int64(r.exp(float64(40*minute)))
		} else {
			deliveredAt = sentAt + r.between(300, 6_000)
		}
		skipDelivered = r.chance(cfg.SkipDeliveredRate)
		if skipDelivered || r.chance(cfg.ReadRate) {
			readAt = deliveredAt + second + int64(r.exp(float64(12*minute)))
		}
	}

	send := base
	send.kind, send.sub, send.ts = recSend, kind, now/1000
	send.idx = uint8(r.intn(256))
	if !r.chance(cfg.MissingSendRate) {
		at := now + r.between(20, 250)
		if r.chance(cfg.LateSendRate) {
			at = max(sentAt, deliveredAt) + r.between(2_000, 90_000)
		}
		g.push(send, at)
	}

	var meta metaView
	if !failed {
		meta = g.meta(&g.accts[th.acct].states[th.cust], kind, deliveredAt/1000)
	}
	st := base
	st.kind = recStatus
	st.meta = meta
	st.sub, st.ts = stSent, sentAt/1000
	g.push(st, sentAt+g.latency())
	if failed {
		failedAt := sentAt + r.between(1_000, 30_000)
		st.sub, st.ts, st.meta = stFailed, failedAt/1000, metaView{}
		g.push(st, failedAt+g.latency())
		return
	}
	if !skipDelivered {
		st.sub, st.ts = stDelivered, deliveredAt/1000
		g.push(st, deliveredAt+g.latency())
	}
	if readAt != 0 {
		st.sub, st.ts = stRead, readAt/1000
		g.push(st, readAt+g.latency())
	}
}

// inbound has the customer send a message of type typ at now.
func (g *generator) inbound(th *thread, now int64, typ uint8, referral bool) {
	g.msgSeq++
	t := now / 1000
	cs := &g.accts[th.acct].states[th.cust]
	cs.serviceWindowEnd = t + conversation
	if referral {
		cs.freeEntryEligible = t + conversation
	}
	p := pending{kind: recInbound, sub: typ, ref: referral, acct: th.acct, cust: th.cust, phone: g.phoneOf(th),
		ts: t, msg: g.msgSeq, ctx: th.lastOut, idx: uint8(g.r.intn(256))}
	if typ == inText && !referral && g.r.chance(0.5) {
		p.ctx = 0 // a new question, not a reply
	}
	g.push(p, now+g.latency())
}
