package deploytest

import (
	"strings"
	"testing"
)

// checkAll runs every check on b and returns the problems found.
func checkAll(t *testing.T, b bundle) problems {
	t.Helper()
	f := loadFacts(t)
	doc := parseReadmeEnv(b["README.md"])
	var all problems
	all = append(all, checkK8s(b, doc)...)
	cf, p := checkCompose(b, repoRoot(t), doc)
	all = append(all, p...)
	all = append(all, checkRules(b, f)...)
	all = append(all, checkPrometheusConfig(b, cf)...)
	all = append(all, checkGrafana(b, f, cf)...)
	return all
}

func loadTestBundle(t *testing.T) bundle {
	t.Helper()
	b, err := loadBundle(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The deploy files as committed pass every check.
func TestDeployIsValid(t *testing.T) {
	b := loadTestBundle(t)
	for _, p := range checkAll(t, b) {
		t.Error(p)
	}
}

// The facts the checks rely on are found, so that an empty scan cannot make
// every metric look unknown, or the README parser every variable
// undocumented, without this failing.
func TestFactsAreFound(t *testing.T) {
	f := loadFacts(t)
	for _, m := range []string{"wameter_stream_consumer_lag", "wameter_sink_insert_duration_seconds", "wameter_window_events_total", "wameter_gateway_requests_total", "wameter_alert_firing"} {
		if _, ok := f.metrics[m]; !ok {
			t.Errorf("metric %s not found in the Go source", m)
		}
	}
	if m := f.metrics["wameter_stream_consumer_lag"]; m == nil || !m.labels["partition"] || !m.labels["group"] {
		t.Errorf("wameter_stream_consumer_lag labels = %v, want group, topic, partition", m)
	}
	if m, ok := f.lookupMetric("wameter_sink_insert_duration_seconds_bucket"); !ok || m.kind != "Histogram" {
		t.Error("histogram buckets of wameter_sink_insert_duration_seconds not resolved")
	}
	if _, ok := f.lookupMetric("wameter_window_state_keys_bucket"); ok {
		t.Error("a gauge resolved with a _bucket suffix")
	}
	for _, table := range []string{"charges", "conversations", "spend_hourly", "conversations_hourly"} {
		if !f.tables[table] {
			t.Errorf("table %s not found in schemas/", table)
		}
	}
	doc := parseReadmeEnv(loadTestBundle(t)["README.md"])
	for _, v := range []string{"KAFKA_BROKERS", "KAFKA_SASL_PASSWORD_FILE", "CLICKHOUSE_PASSWORD_FILE", "WAMETER_OPS_ADDR", "WAMETER_EVENTS_TOPIC"} {
		if !doc.documents(v) {
			t.Errorf("README contract does not document %s (parser broken?)", v)
		}
	}
	if doc.documents("WAMETER_NOT_A_VARIABLE") {
		t.Error("the README parser documents anything")
	}
}

// Every known extra is read by the Go source: the list cannot hold names
// that nothing reads.
func TestKnownExtrasAreRead(t *testing.T) {
	f := loadFacts(t)
	for name, where := range knownExtras {
		if !f.envTags[name] {
			t.Errorf("known extra %s (%s): no env struct tag reads it", name, where)
		}
	}
}

// Each broken copy of the deploy files fails with the expected problem: the
// checks detect what they claim to.
func TestBrokenDeployFails(t *testing.T) {
	base := loadTestBundle(t)
	cases := []struct {
		name, file, old, new, want string
	}{
		{"yaml syntax", "deploy/k8s/normalize.yaml", "  replicas: 1\n", "  replicas: [1\n", "parse YAML"},
		{"missing metadata.name", "deploy/k8s/namespace.yaml", "  name: wameter\n", "  labels: {}\n", "without apiVersion, kind or metadata.name"},
		{"missing readiness probe", "deploy/k8s/window.yaml", "readinessProbe:", "startupProbe:", "readinessProbe (httpGet /readyz on the ops port) missing"},
		{"liveness on the wrong path", "deploy/k8s/sink.yaml", "path: /healthz", "path: /metrics", "livenessProbe path"},
		{"probe on another port", "deploy/k8s/account.yaml", "            - name: ops\n              containerPort: 9464", "            - name: ops\n              containerPort: 9000", "but the ops server listens on 9464"},
		{"alert ops on loopback", "deploy/k8s/alert.yaml", "value: \"0.0.0.0:9464\"", "value: \"127.0.0.1:9464\"", "listens on loopback"},
		{"no resources", "deploy/k8s/normalize.yaml", "          resources:\n", "          resourcez:\n", "resources.requests.cpu"},
		{"too many CPU requests", "deploy/k8s/window.yaml", "cpu: 200m", "cpu: 1000m", "does not fit a 2-core node"},
		{"writable root", "deploy/k8s/account.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem must be true"},
		{"short grace", "deploy/k8s/sink.yaml", "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds must be at least 45"},
		{"window above partitions", "deploy/k8s/window.yaml", "  replicas: 2\n", "  replicas: 4\n", "exceed WAMETER_PARTITIONS 4"},
		{"window without PDB", "deploy/k8s/window.yaml", "  minAvailable: 1", "  maxUnavailable: 1", "needs a PodDisruptionBudget"},
		{"gateway without HPA", "deploy/k8s/gateway.yaml", "    name: wameter-gateway\n  minReplicas", "    name: wameter-gatewy\n  minReplicas", "no HorizontalPodAutoscaler"},
		{"gateway without Service port", "deploy/k8s/gateway.yaml", "      targetPort: http", "      targetPort: ops", "no Service routes to the gateway port 8080"},
		{"undocumented variable", "deploy/k8s/configmap.yaml", "WAMETER_LATENESS:", "WAMETER_LATENES:", "WAMETER_LATENES is not documented"},
		{"secret as literal", "deploy/k8s/configmap.yaml", "  CLICKHOUSE_USER: \"wameter\"\n", "  CLICKHOUSE_USER: \"wameter\"\n  CLICKHOUSE_PASSWORD: \"hunter2\"\n", "sets CLICKHOUSE_PASSWORD as a literal"},
		{"secret file not mounted", "deploy/k8s/gateway.yaml", "              - key: whatsapp-app-secret\n                path: whatsapp-app-secret\n", "", "WHATSAPP_APP_SECRET_FILE=/var/run/secrets/wameter/whatsapp-app-secret: volume secrets (Secret wameter-secrets) provides no file"},
		{"secret key missing", "deploy/k8s/secret.yaml", "  kafka-sasl-password:", "  kafka-password:", "item key kafka-sasl-password is not in Secret wameter-secrets"},
		{"accounts not mounted", "deploy/k8s/normalize.yaml", "              mountPath: /etc/wameter/accounts\n", "              mountPath: /etc/accounts\n", "WAMETER_ACCOUNTS=/etc/wameter/accounts/accounts.yaml: no volume is mounted"},
		{"accounts file invalid", "deploy/k8s/configmap.yaml", "currency: USD", "currency: XYZ", "currency XYZ has no rate card"},
		{"accounts file unknown key", "deploy/k8s/configmap.yaml", "country: BR", "contry: BR", "field contry not found"},
		{"kustomization incomplete", "deploy/k8s/kustomization.yaml", "  - alert.yaml\n", "", "does not list alert.yaml"},
		{"kustomization lists a ghost", "deploy/k8s/kustomization.yaml", "  - alert.yaml\n", "  - alert.yaml\n  - cronjob.yaml\n", "lists cronjob.yaml, which does not exist"},
		{"role missing", "deploy/k8s/account.yaml", "args: [\"account\"]", "args: [\"acount\"]", "no Deployment runs `wameter account`"},
		{"rule on an unknown metric", "deploy/prometheus/alerts.yml", "wameter_sink_healthy)", "wameter_sink_healthyy)", "unknown metric wameter_sink_healthyy"},
		{"rule on an unknown label", "deploy/prometheus/alerts.yml", "by (stage, reason)", "by (stage, reson)", "label \"reson\" is on none of its metrics"},
		{"rule syntax", "deploy/prometheus/alerts.yml", "(rate(wameter_stream_dead_letters_total[5m]))", "(rate(wameter_stream_dead_letters_total[5m])", "unclosed"},
		{"rule key typo", "deploy/prometheus/alerts.yml", "        for: 5m\n", "        fro: 5m\n", "parse"},
		{"rule bad duration", "deploy/prometheus/alerts.yml", "for: 10m", "for: ten minutes", "is not a Prometheus duration"},
		{"lag alert dropped", "deploy/prometheus/alerts.yml", "wameter_stream_consumer_lag", "wameter_stream_consumer_records_total", "no alert uses wameter_stream_consumer_lag"},
		{"scrape the wrong port", "deploy/prometheus/prometheus.yml", "\"alert:9465\"", "\"alert:9464\"", "scrapes alert:9464 but its ops port is 9465"},
		{"dashboard JSON", "deploy/grafana/dashboards/wameter-pipeline.json", "{", "{{", "invalid JSON"},
		{"dashboard unknown metric", "deploy/grafana/dashboards/wameter-pipeline.json", "wameter_window_state_keys)", "wameter_window_state_key)", "unknown metric wameter_window_state_key"},
		{"dashboard unknown table", "deploy/grafana/dashboards/wameter-spend.json", "FROM spend_hourly\\nWHERE $__timeFilter(hour)", "FROM spend_hour\\nWHERE $__timeFilter(hour)", "reads spend_hour, a table schemas/ does not create"},
		{"dashboard unknown variable", "deploy/grafana/dashboards/wameter-spend.json", "\"name\": \"currency\"", "\"name\": \"ccy\"", "uses $currency, which the dashboard does not define"},
		{"dashboard data source", "deploy/grafana/provisioning/datasources/datasources.yml", "uid: clickhouse", "uid: ch", "uid clickhouse (type grafana-clickhouse-datasource)"},
		{"compose undocumented variable", "docker-compose.yml", "WAMETER_GATEWAY_ADDR: 0.0.0.0:8080", "WAMETER_GATEWAY_LISTEN: 0.0.0.0:8080", "WAMETER_GATEWAY_LISTEN is not documented"},
		{"compose gateway gone", "docker-compose.yml", "command: [\"gateway\"]", "command: [\"all-in-one\"]", "service gateway must run `wameter gateway`"},
		{"compose mount missing", "docker-compose.yml", "./deploy/grafana/dashboards:", "./deploy/grafana/dashbords:", "which does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := base.clone()
			text, ok := b[c.file]
			if !ok {
				t.Fatalf("%s not in the bundle", c.file)
			}
			if !strings.Contains(string(text), c.old) {
				t.Fatalf("%s does not contain %q: update the case", c.file, c.old)
			}
			b[c.file] = []byte(strings.ReplaceAll(string(text), c.old, c.new))
			got := checkAll(t, b)
			for _, p := range got {
				if strings.Contains(p, c.want) {
					return
				}
			}
			t.Errorf("no problem mentions %q; got %d:\n%s", c.want, len(got), strings.Join(got, "\n"))
		})
	}
}
