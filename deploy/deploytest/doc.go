// Package deploytest holds no code, only tests: they validate what deploy/
// ships against the rest of the repository, so that a manifest, a dashboard
// or an alert rule cannot drift from the binary without `make test` failing.
//
//   - deploy/k8s: every YAML document parses and has apiVersion, kind and
//     metadata.name; kustomization.yaml lists every manifest; every
//     Deployment has readiness (/readyz) and liveness (/healthz) probes on
//     the port its command's ops address listens on, Prometheus annotations
//     for that port, resources (requests <= limits, the total sized for a
//     2-core node), a non-root read-only securityContext and a termination
//     grace of at least 45s; the file variables (*_FILE, WAMETER_ACCOUNTS,
//     WAMETER_ALERT_RULES) a command reads name files that a mounted Secret
//     or ConfigMap provides; the shipped accounts file passes pkg/accounts
//     against the built-in pricing; no secret is set as a literal; the window stage
//     has no more replicas than partitions and a PodDisruptionBudget, as has
//     the gateway (with a Service and an HPA).
//   - Every environment variable set in deploy/k8s and for the wameter
//     services of docker-compose.yml is in the README's contract tables or
//     in knownExtras (each of which a Go struct tag reads).
//   - deploy/prometheus: the rules parse strictly and every metric and label
//     they use exists in the Go source (found by parsing the *Opts literals
//     of the Prometheus client); the scrape targets are the compose services
//     on their ops ports.
//   - deploy/grafana: dashboards are valid JSON with panels whose queries use
//     existing metrics (Prometheus) or tables (ClickHouse, schemas/*.sql)
//     and provisioned data sources; the spend dashboard's SQL, with the
//     plugin's macros expanded, runs on a real ClickHouse server
//     (pkg/testenv) with the schemas applied and returns rows.
//
// Every check also runs against broken copies (TestBrokenDeployFails), so a
// check that stops detecting its problem fails too.
package deploytest
