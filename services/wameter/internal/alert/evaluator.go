package alert

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"
)

// Evaluator evaluates the rules against spend_hourly, notifies transitions
// and records them in spend_alerts. Call Evaluate from one goroutine.
type Evaluator struct {
	rules    *Rules
	store    spendStore
	notifier *Notifier
	tracker  *Tracker
	logger   *zap.Logger

	recovered bool

	evaluations   *prometheus.CounterVec
	firing        prometheus.Gauge
	notifications *prometheus.CounterVec
}

// NewEvaluator returns an Evaluator of rules (as ParseRules returns them)
// over the database of conn, which holds spend_hourly and spend_alerts.
// Metrics go to reg.
func NewEvaluator(conn clickhouse.Conn, rules *Rules, logger *zap.Logger, reg prometheus.Registerer) (*Evaluator, error) {
	if conn == nil || rules == nil || logger == nil || reg == nil {
		return nil, errors.New("alert: NewEvaluator needs a connection, rules, a logger and a registerer")
	}
	f := promauto.With(reg)
	return &Evaluator{
		rules: rules, store: spendStore{conn: conn}, notifier: NewNotifier(rules.Notify), tracker: NewTracker(),
		logger: logger.Named("alert"),
		evaluations: f.NewCounterVec(prometheus.CounterOpts{Name: "wameter_alert_evaluations_total",
			Help: "Rule evaluations, by outcome (ok, error)."}, []string{"outcome"}),
		firing: f.NewGauge(prometheus.GaugeOpts{Name: "wameter_alert_firing",
			Help: "Alerts firing now."}),
		notifications: f.NewCounterVec(prometheus.CounterOpts{Name: "wameter_alert_notifications_total",
			Help: "Notifications, by outcome (sent, failed: failed after every retry, tried again next evaluation)."}, []string{"outcome"}),
	}, nil
}

// Evaluate runs one evaluation at now: on the first call it recovers the
// open alerts from spend_alerts, then it observes every rule, and notifies
// and records the transitions still pending (new ones and those that
// failed before). It returns every problem; a failed query skips the
// observation (no alert changes state) but pending ones are still tried.
func (e *Evaluator) Evaluate(ctx context.Context, now time.Time) error {
	err := e.evaluate(ctx, now)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	e.evaluations.WithLabelValues(outcome).Inc()
	e.firing.Set(float64(e.tracker.Firing()))
	return err
}

func (e *Evaluator) evaluate(ctx context.Context, now time.Time) error {
	if !e.recovered {
		open, err := e.store.openAlerts(ctx)
		if err != nil {
			return fmt.Errorf("recover open alerts: %w", err)
		}
		e.tracker.Restore(open)
		e.recovered = true
		e.logger.Info("recovered open alerts", zap.Int("firing", len(open)))
	}
	var errs []error
	if obs, err := e.observe(ctx, now); err != nil {
		errs = append(errs, err)
	} else {
		e.tracker.Observe(now, obs)
	}
	// After one notification failed every retry, the webhook is taken to be
	// down: the others wait for the next evaluation instead of each spending
	// its retries now (records of notified ones are still written).
	webhookDown := false
	for _, p := range e.tracker.Pending() {
		if webhookDown && !p.Notified {
			continue
		}
		if err := e.deliver(ctx, p); err != nil {
			errs = append(errs, err)
			webhookDown = webhookDown || !p.Notified
		}
	}
	return errors.Join(errs...)
}

// observe evaluates every rule at now.
func (e *Evaluator) observe(ctx context.Context, now time.Time) ([]Observation, error) {
	windows, err := e.store.windowSpends(ctx, now, e.rules.Window, historyDays)
	if err != nil {
		return nil, err
	}
	obs := spikeObservations(e.rules, now, windows)
	for _, period := range []string{PeriodDaily, PeriodMonthly} {
		if !e.hasBudget(period) {
			continue
		}
		spend, err := e.store.periodSpends(ctx, periodStart(period, now), now)
		if err != nil {
			return nil, err
		}
		obs = append(obs, budgetObservations(e.rules, period, now, spend)...)
	}
	return obs, nil
}

func (e *Evaluator) hasBudget(period string) bool {
	for _, b := range e.rules.Budgets {
		if b.Period == period {
			return true
		}
	}
	return false
}

// deliver notifies p unless done before, then records it. The record comes
// after the notification: a row in spend_alerts means "notified", which is
// what recovery relies on. A crash between the two notifies again after the
// restart (at least once).
func (e *Evaluator) deliver(ctx context.Context, p *Pending) error {
	log := e.logger.With(zap.String("alert_id", p.ID), zap.String("rule", p.Rule), zap.String("waba_id", p.WABAID),
		zap.String("category", p.Category), zap.String("state", p.State))
	if !p.Notified {
		if err := e.notifier.Send(ctx, &p.Alert); err != nil {
			e.notifications.WithLabelValues("failed").Inc()
			log.Warn("notification failed; trying again next evaluation", zap.Error(err))
			return fmt.Errorf("notify %s %s: %w", p.State, p.ID, err)
		}
		e.notifications.WithLabelValues("sent").Inc()
		e.tracker.MarkNotified(p)
		log.Info("alert notified", zap.String("message", p.Message))
	}
	if err := e.store.record(ctx, &p.Alert); err != nil {
		log.Warn("recording alert failed; trying again next evaluation", zap.Error(err))
		return err
	}
	e.tracker.MarkRecorded(p)
	return nil
}
