package deploytest

import (
	"bytes"
	"encoding/json"
	"net"
	"path"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

const (
	promDir    = "deploy/prometheus"
	grafanaDir = "deploy/grafana"
)

// alertsMustCover: for each, some alert rule uses the metric (the pipeline's
// failure modes: lag, dead letters, unhealthy sink, no_rate charges, late
// events, a process down).
var alertsMustCover = []string{
	"wameter_stream_consumer_lag", "wameter_stream_dead_letters_total", "wameter_sink_healthy",
	"wameter_account_no_rate_total", "wameter_window_events_total", "up",
}

// pipelineDashboardMustShow: the metrics the pipeline dashboard must plot.
var pipelineDashboardMustShow = []string{
	"wameter_stream_consumer_lag", "wameter_window_events_total", "wameter_normalize_records_total",
	"wameter_stream_dead_letters_total", "wameter_sink_insert_duration_seconds", "wameter_sink_batch_rows",
	"wameter_sink_healthy", "wameter_window_state_keys", "wameter_window_buffered_events",
}

var rePromDuration = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert         string            `yaml:"alert"`
			Record        string            `yaml:"record"`
			Expr          string            `yaml:"expr"`
			For           string            `yaml:"for"`
			KeepFiringFor string            `yaml:"keep_firing_for"`
			Labels        map[string]string `yaml:"labels"`
			Annotations   map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// checkRules validates deploy/prometheus/alerts.yml: strict structure,
// durations, severities and summaries, and expressions over metrics and
// labels that the Go source defines.
func checkRules(b bundle, f *facts) problems {
	var p problems
	file := promDir + "/alerts.yml"
	data, ok := b[file]
	if !ok {
		p.add("%s: missing", file)
		return p
	}
	var rf ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		p.add("%s: parse: %v", file, err)
		return p
	}
	if len(rf.Groups) == 0 {
		p.add("%s: no rule groups", file)
	}
	covered := map[string]bool{}
	names := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			p.add("%s: group %q needs a name and rules", file, g.Name)
		}
		for _, r := range g.Rules {
			id := r.Alert + r.Record
			if (r.Alert == "") == (r.Record == "") {
				p.add("%s: group %s: a rule needs exactly one of alert and record", file, g.Name)
			}
			if names[id] {
				p.add("%s: rule %s defined twice", file, id)
			}
			names[id] = true
			for _, d := range []string{r.For, r.KeepFiringFor} {
				if d != "" && !rePromDuration.MatchString(d) {
					p.add("%s: rule %s: %q is not a Prometheus duration", file, id, d)
				}
			}
			if r.Alert != "" {
				switch r.Labels["severity"] {
				case "critical", "warning", "info":
				default:
					p.add("%s: alert %s: labels.severity must be critical, warning or info", file, id)
				}
				if r.Annotations["summary"] == "" {
					p.add("%s: alert %s: annotations.summary missing", file, id)
				}
			}
			families, bad := f.checkPromExpr(r.Expr)
			for _, b := range bad {
				p.add("%s: rule %s: %s", file, id, b)
			}
			for _, m := range families {
				covered[m] = true
			}
		}
	}
	for _, m := range alertsMustCover {
		if !covered[m] {
			p.add("%s: no alert uses %s", file, m)
		}
	}
	return p
}

// checkPrometheusConfig validates prometheus.yml against docker-compose.yml:
// its rule files exist and are mounted where it reads them, and it scrapes
// every long-running wameter service on that service's ops port.
func checkPrometheusConfig(b bundle, cs composeFile) problems {
	var p problems
	file := promDir + "/prometheus.yml"
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b[file], &cfg); err != nil {
		p.add("%s: parse: %v", file, err)
		return p
	}
	prom, ok := cs.Services["prometheus"]
	if !ok {
		p.add("docker-compose.yml: no prometheus service")
		return p
	}
	mounted := prom.mounts()
	if src, ok := mounted["/etc/prometheus/prometheus.yml"]; !ok || src != file {
		p.add("docker-compose.yml: prometheus must mount ./%s at /etc/prometheus/prometheus.yml", file)
	}
	for _, rf := range cfg.RuleFiles {
		src, ok := mounted[rf]
		if !ok {
			p.add("%s: rule file %s is not mounted into the prometheus service", file, rf)
		} else if _, ok := b[src]; !ok {
			p.add("%s: rule file %s comes from %s, which does not exist", file, rf, src)
		}
	}
	scraped := map[string]string{}
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == "" || jobs[sc.JobName] {
			p.add("%s: job_name empty or duplicate: %q", file, sc.JobName)
		}
		jobs[sc.JobName] = true
		for _, st := range sc.StaticConfigs {
			for _, t := range st.Targets {
				host, port, err := net.SplitHostPort(t)
				if err != nil {
					p.add("%s: target %q: %v", file, t, err)
					continue
				}
				scraped[host] = port
			}
		}
	}
	for name, svc := range cs.Services {
		command := svc.wameterCommand()
		if command == "" || len(svc.Profiles) > 0 {
			continue
		}
		v, def := opsAddrVar(command)
		addr := svc.env()[v]
		if addr == "" {
			addr = def
		}
		_, port, _ := net.SplitHostPort(addr)
		got, ok := scraped[name]
		switch {
		case !ok:
			p.add("%s: does not scrape the %s service", file, name)
		case got != port:
			p.add("%s: scrapes %s:%s but its ops port is %s (%s=%s)", file, name, got, port, v, addr)
		}
	}
	return p
}

// checkGrafana validates the provisioning and the dashboards.
func checkGrafana(b bundle, f *facts, cs composeFile) problems {
	var p problems
	dsFile := grafanaDir + "/provisioning/datasources/datasources.yml"
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name string `yaml:"name"`
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b[dsFile], &ds); err != nil || ds.APIVersion != 1 {
		p.add("%s: parse (apiVersion 1): %v", dsFile, err)
	}
	dsTypes := map[string]string{}
	for _, d := range ds.Datasources {
		dsTypes[d.UID] = d.Type
	}
	if dsTypes["prometheus"] != "prometheus" || dsTypes["clickhouse"] != "grafana-clickhouse-datasource" {
		p.add("%s: want data sources uid prometheus (type prometheus) and uid clickhouse (type grafana-clickhouse-datasource)", dsFile)
	}
	graf, ok := cs.Services["grafana"]
	if !ok {
		p.add("docker-compose.yml: no grafana service")
	} else {
		if !strings.Contains(graf.env()["GF_INSTALL_PLUGINS"]+graf.env()["GF_PLUGINS_PREINSTALL"], "grafana-clickhouse-datasource") {
			p.add("docker-compose.yml: grafana must install the grafana-clickhouse-datasource plugin")
		}
		m := graf.mounts()
		if m["/etc/grafana/provisioning"] != grafanaDir+"/provisioning" {
			p.add("docker-compose.yml: grafana must mount ./%s/provisioning at /etc/grafana/provisioning", grafanaDir)
		}
		var prov struct {
			Providers []struct {
				Options struct {
					Path string `yaml:"path"`
				} `yaml:"options"`
			} `yaml:"providers"`
		}
		provFile := grafanaDir + "/provisioning/dashboards/dashboards.yml"
		if err := yaml.Unmarshal(b[provFile], &prov); err != nil || len(prov.Providers) == 0 {
			p.add("%s: parse, with a provider: %v", provFile, err)
		}
		for _, pr := range prov.Providers {
			if m[pr.Options.Path] != grafanaDir+"/dashboards" {
				p.add("%s: dashboards path %s is not where compose mounts ./%s/dashboards", provFile, pr.Options.Path, grafanaDir)
			}
		}
	}

	dashboards := b.under(grafanaDir+"/dashboards", ".json")
	if len(dashboards) < 2 {
		p.add("%s/dashboards: want the pipeline and spend dashboards, found %d", grafanaDir, len(dashboards))
	}
	uids := map[string]string{}
	for _, file := range dashboards {
		var d map[string]any
		if err := json.Unmarshal(b[file], &d); err != nil {
			p.add("%s: invalid JSON: %v", file, err)
			continue
		}
		uid, title := str(d["uid"]), str(d["title"])
		if uid == "" || title == "" {
			p.add("%s: uid and title required", file)
		}
		if prev, dup := uids[uid]; dup {
			p.add("%s: uid %s also in %s", file, uid, prev)
		}
		uids[uid] = file
		vars := map[string]bool{}
		for _, v := range list(dig(d, "templating", "list")) {
			vars[str(dig(v, "name"))] = true
		}
		panels := flattenPanels(list(d["panels"]))
		if len(panels) == 0 {
			p.add("%s: no panels", file)
		}
		used := map[string]bool{}
		ids := map[string]bool{}
		for _, pn := range panels {
			ptitle := str(pn["title"])
			id := str(pn["id"])
			if id == "" || ids[id] {
				p.add("%s: panel %q: id missing or duplicate", file, ptitle)
			}
			ids[id] = true
			if pn["gridPos"] == nil || ptitle == "" {
				p.add("%s: panel %q: title and gridPos required", file, ptitle)
			}
			if str(pn["type"]) == "row" {
				continue
			}
			targets := list(pn["targets"])
			if len(targets) == 0 {
				p.add("%s: panel %q: no queries", file, ptitle)
			}
			for _, t := range targets {
				dsRef := dig(t, "datasource", "uid")
				if dsRef == nil {
					dsRef = dig(pn, "datasource", "uid")
				}
				typ, ok := dsTypes[str(dsRef)]
				if !ok {
					p.add("%s: panel %q: data source %v is not provisioned", file, ptitle, dsRef)
					continue
				}
				switch typ {
				case "prometheus":
					families, bad := f.checkPromExpr(str(dig(t, "expr")))
					for _, e := range bad {
						p.add("%s: panel %q: %s", file, ptitle, e)
					}
					for _, m := range families {
						used[m] = true
					}
				case "grafana-clickhouse-datasource":
					for _, e := range checkSQL(str(dig(t, "rawSql")), f, vars) {
						p.add("%s: panel %q: %s", file, ptitle, e)
					}
					used["sql"] = true
				}
			}
		}
		switch uid {
		case "wameter-pipeline":
			for _, m := range pipelineDashboardMustShow {
				if !used[m] {
					p.add("%s: no panel shows %s", file, m)
				}
			}
		case "wameter-spend":
			if !used["sql"] {
				p.add("%s: no ClickHouse panel", file)
			}
		}
	}
	for _, want := range []string{"wameter-pipeline", "wameter-spend"} {
		if _, ok := uids[want]; !ok {
			p.add("%s/dashboards: no dashboard with uid %s", grafanaDir, want)
		}
	}
	return p
}

func flattenPanels(in []any) []map[string]any {
	var out []map[string]any
	for _, x := range in {
		pn := mapOf(x)
		if pn == nil {
			continue
		}
		out = append(out, pn)
		out = append(out, flattenPanels(list(pn["panels"]))...)
	}
	return out
}

var (
	reSQLTable = regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+([a-zA-Z_][a-zA-Z0-9_.]*)`)
	reSQLVar   = regexp.MustCompile(`\$\{([a-zA-Z0-9_]+)(?::[a-z]+)?\}|\$([a-zA-Z][a-zA-Z0-9_]*)`)
)

// checkSQL: a ClickHouse query reads tables that schemas/ creates and uses
// only dashboard variables that exist (the plugin's $__ macros aside).
func checkSQL(sql string, f *facts, vars map[string]bool) []string {
	var bad []string
	if strings.TrimSpace(sql) == "" {
		return []string{"empty rawSql"}
	}
	if err := balanced(rePromString.ReplaceAllString(sql, "''")); err != nil {
		bad = append(bad, "rawSql: "+err.Error())
	}
	tables := reSQLTable.FindAllStringSubmatch(sql, -1)
	if len(tables) == 0 {
		bad = append(bad, "rawSql reads no table")
	}
	for _, m := range tables {
		name := path.Ext("." + m[1])[1:] // database.table -> table
		if !f.tables[name] {
			bad = append(bad, "rawSql reads "+m[1]+", a table schemas/ does not create")
		}
	}
	for _, m := range reSQLVar.FindAllStringSubmatch(sql, -1) {
		name := m[1] + m[2]
		if strings.HasPrefix(name, "__") || strings.HasPrefix(m[0], "$__") {
			continue
		}
		if !vars[name] {
			bad = append(bad, "rawSql uses $"+name+", which the dashboard does not define")
		}
	}
	return bad
}
