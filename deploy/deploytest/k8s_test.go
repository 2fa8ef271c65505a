package deploytest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/wameter/wameter/pkg/accounts"
	"github.com/wameter/wameter/pkg/pricing"
)

const k8sDir = "deploy/k8s"

// object is one Kubernetes object of a manifest file.
type object struct {
	file string
	m    map[string]any
}

func (o object) kind() string { return str(o.m["kind"]) }
func (o object) name() string { return str(dig(o.m, "metadata", "name")) }
func (o object) String() string {
	return fmt.Sprintf("%s: %s/%s", o.file, o.kind(), o.name())
}

// decodeAll decodes every document of a multi-document YAML file (empty
// documents are skipped).
func decodeAll(data []byte) ([]map[string]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []map[string]any
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		if m != nil {
			docs = append(docs, m)
		}
	}
}

// Helpers to walk decoded YAML/JSON.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}
func list(v any) []any { l, _ := v.([]any); return l }
func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
func intOf(v any) (int, bool) {
	switch v := v.(type) {
	case int:
		return v, true
	case float64:
		return int(v), v == float64(int(v))
	case string:
		n, err := strconv.Atoi(v)
		return n, err == nil
	}
	return 0, false
}

// k8sRequired are the commands the manifests must run, as Deployments
// except migrate (a Job).
var k8sRequired = []string{"normalize", "window", "account", "sink", "gateway", "alert", "migrate"}

// secretVars must never be set as literals in Kubernetes: only their *_FILE
// forms, pointing at a mounted Secret.
var secretVars = []string{"CLICKHOUSE_PASSWORD", "KAFKA_SASL_PASSWORD", "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN"}

// fileVars are the variables naming a file that each command reads; when
// set, the file must come from a volume mounted into the container.
var fileVars = func() map[string][]string {
	kafka := []string{"KAFKA_SASL_PASSWORD_FILE", "KAFKA_TLS_CA_FILE", "KAFKA_TLS_CERT_FILE", "KAFKA_TLS_KEY_FILE"}
	clickhouse := []string{"CLICKHOUSE_PASSWORD_FILE", "CLICKHOUSE_TLS_CA_FILE"}
	pipeline := append(append(append([]string{}, kafka...), clickhouse...), "WAMETER_ACCOUNTS")
	return map[string][]string{
		"normalize": pipeline, "window": pipeline, "account": pipeline, "sink": pipeline, "all-in-one": pipeline,
		"gateway": append(append([]string{}, kafka...), "WHATSAPP_APP_SECRET_FILE", "WHATSAPP_VERIFY_TOKEN_FILE"),
		"alert":   append(append([]string{}, clickhouse...), "WAMETER_ALERT_RULES"),
		"migrate": clickhouse,
	}
}()

// opsAddrVar is the variable holding the ops server's address of command
// and its default.
func opsAddrVar(command string) (string, string) {
	if command == "alert" {
		return "WAMETER_ALERT_OPS_ADDR", "127.0.0.1:9465"
	}
	return "WAMETER_OPS_ADDR", "127.0.0.1:9464"
}

// node budget: the whole deployment at its minimum size must fit a 2-core
// node beside the kubelet and system pods.
const (
	maxTotalCPURequestMilli = 1500
	maxCPULimitMilli        = 2000
	minGraceSeconds         = 45
)

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// checkK8s validates deploy/k8s of b.
func checkK8s(b bundle, doc envDoc) problems {
	var p problems
	files := b.under(k8sDir, ".yaml", ".yml")
	var manifests []string
	var objs []object
	for _, f := range files {
		if path.Base(f) == "kustomization.yaml" || path.Base(f) == "kustomization.yml" {
			continue
		}
		manifests = append(manifests, strings.TrimPrefix(f, k8sDir+"/"))
		docs, err := decodeAll(b[f])
		if err != nil {
			p.add("%s: parse YAML: %v", f, err)
		}
		for _, d := range docs {
			objs = append(objs, object{file: f, m: d})
		}
	}
	checkKustomization(b, manifests, &p)

	byKindName := map[string]object{}
	for _, o := range objs {
		if str(o.m["apiVersion"]) == "" || o.kind() == "" || o.name() == "" {
			p.add("%s: object without apiVersion, kind or metadata.name", o)
			continue
		}
		key := o.kind() + "/" + o.name()
		if prev, dup := byKindName[key]; dup {
			p.add("%s: duplicate of %s", o, prev)
		}
		byKindName[key] = o
	}
	get := func(kind, name string) (object, bool) { o, ok := byKindName[kind+"/"+name]; return o, ok }

	seen := map[string]object{}
	var cpuRequests int64
	var pdbs, services, hpas []object
	for _, o := range objs {
		switch o.kind() {
		case "PodDisruptionBudget":
			pdbs = append(pdbs, o)
		case "Service":
			services = append(services, o)
		case "HorizontalPodAutoscaler":
			hpas = append(hpas, o)
		case "ConfigMap":
			if data, ok := mapOf(o.m["data"])["accounts.yaml"].(string); ok {
				checkAccounts(o, data, &p)
			}
			for k := range mapOf(o.m["data"]) {
				for _, s := range secretVars {
					if k == s {
						p.add("%s: sets %s as a literal: use %s_FILE and the Secret", o, s, s)
					}
				}
			}
		}
	}
	for _, o := range objs {
		if o.kind() != "Deployment" && o.kind() != "Job" {
			continue
		}
		pod := mapOf(dig(o.m, "spec", "template", "spec"))
		containers := list(pod["containers"])
		if len(containers) == 0 {
			p.add("%s: no containers", o)
			continue
		}
		replicas := 1
		if r, ok := dig(o.m, "spec", "replicas").(int); ok {
			replicas = r
		}
		if o.kind() == "Deployment" && o.name() == "wameter-gateway" {
			replicas = hpaMin(objs, o.name())
		}
		if g, ok := intOf(pod["terminationGracePeriodSeconds"]); !ok || g < minGraceSeconds {
			p.add("%s: terminationGracePeriodSeconds must be at least %d (revoke, flush and commit on SIGTERM)", o, minGraceSeconds)
		}
		podNonRoot := dig(pod, "securityContext", "runAsNonRoot") == true
		for _, c := range containers {
			c := mapOf(c)
			cname := fmt.Sprintf("%s container %s", o, str(c["name"]))
			command := containerCommand(c)
			if command == "" {
				p.add("%s: no command (args[0])", cname)
			} else if prev, dup := seen[command]; dup {
				p.add("%s: command %s also runs in %s", cname, command, prev)
			} else {
				seen[command] = o
			}
			env := containerEnv(c, get, &p, cname)
			for name := range env {
				if !doc.documents(name) && knownExtras[name] == "" {
					p.add("%s: environment variable %s is not documented (README contract tables) nor a known extra", cname, name)
				}
			}
			for _, e := range list(c["env"]) {
				e := mapOf(e)
				for _, s := range secretVars {
					if str(e["name"]) == s && e["value"] != nil {
						p.add("%s: sets %s as a literal: use %s_FILE and the Secret", cname, s, s)
					}
				}
			}
			checkFiles(c, pod, env, command, get, &p, cname)
			cpu := checkResources(c, &p, cname)
			cpuRequests += cpu * int64(replicas)
			sc := mapOf(c["securityContext"])
			if !(podNonRoot || sc["runAsNonRoot"] == true) {
				p.add("%s: runAsNonRoot not set", cname)
			}
			if sc["readOnlyRootFilesystem"] != true {
				p.add("%s: securityContext.readOnlyRootFilesystem must be true", cname)
			}
			if sc["allowPrivilegeEscalation"] != false {
				p.add("%s: securityContext.allowPrivilegeEscalation must be false", cname)
			}
			if o.kind() == "Deployment" {
				checkOps(o, c, env, command, &p, cname)
				if part, ok := partitionsOf(env); ok && command != "gateway" && command != "alert" {
					surge := 0
					if s, ok := intOf(dig(o.m, "spec", "strategy", "rollingUpdate", "maxSurge")); ok {
						surge = s
					}
					if replicas+surge > part {
						p.add("%s: %d replicas (+%d surge) exceed WAMETER_PARTITIONS %d: members beyond the partition count idle", o, replicas, surge, part)
					}
				}
			}
			if command == "gateway" {
				checkGateway(o, c, env, services, hpas, &p)
			}
		}
		if o.kind() == "Deployment" {
			if cmd := containerCommand(mapOf(containers[0])); cmd == "window" || cmd == "gateway" {
				if !hasPDB(o, pdbs) {
					p.add("%s: needs a PodDisruptionBudget with minAvailable >= 1 selecting its pods", o)
				}
			}
		}
	}
	for _, cmd := range k8sRequired {
		o, ok := seen[cmd]
		want := "Deployment"
		if cmd == "migrate" {
			want = "Job"
		}
		if !ok || o.kind() != want {
			p.add("%s: no %s runs `wameter %s`", k8sDir, want, cmd)
		}
	}
	if cpuRequests > maxTotalCPURequestMilli {
		p.add("%s: CPU requests total %dm at minimum replicas; more than %dm does not fit a 2-core node", k8sDir, cpuRequests, maxTotalCPURequestMilli)
	}
	return p
}

func checkKustomization(b bundle, manifests []string, p *problems) {
	kpath := k8sDir + "/kustomization.yaml"
	data, ok := b[kpath]
	if !ok {
		p.add("%s: missing", kpath)
		return
	}
	var k struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		p.add("%s: parse: %v", kpath, err)
		return
	}
	listed := map[string]bool{}
	for _, r := range k.Resources {
		listed[r] = true
		if _, ok := b[k8sDir+"/"+r]; !ok {
			p.add("%s: lists %s, which does not exist", kpath, r)
		}
	}
	for _, m := range manifests {
		if !listed[m] {
			p.add("%s: does not list %s", kpath, m)
		}
	}
}

func containerCommand(c map[string]any) string {
	args := list(c["args"])
	if len(args) == 0 {
		args = list(c["command"])
		if len(args) > 0 && strings.HasSuffix(str(args[0]), "wameter") {
			args = args[1:]
		}
	}
	if len(args) == 0 {
		return ""
	}
	return str(args[0])
}

// containerEnv is the environment a container sees: envFrom ConfigMaps,
// then env entries.
func containerEnv(c map[string]any, get func(kind, name string) (object, bool), p *problems, cname string) map[string]string {
	env := map[string]string{}
	for _, ef := range list(c["envFrom"]) {
		if ref := str(dig(ef, "configMapRef", "name")); ref != "" {
			cm, ok := get("ConfigMap", ref)
			if !ok {
				p.add("%s: envFrom ConfigMap %s does not exist", cname, ref)
				continue
			}
			for k, v := range mapOf(cm.m["data"]) {
				env[k] = str(v)
			}
		}
		if ref := str(dig(ef, "secretRef", "name")); ref != "" {
			p.add("%s: envFrom Secret %s puts secrets in the environment; mount them and use *_FILE", cname, ref)
		}
	}
	for _, e := range list(c["env"]) {
		e := mapOf(e)
		env[str(e["name"])] = str(e["value"])
	}
	return env
}

// checkFiles: each file variable the command reads, when set, names a file
// a mounted Secret or ConfigMap provides.
func checkFiles(c, pod map[string]any, env map[string]string, command string, get func(kind, name string) (object, bool), p *problems, cname string) {
	volumes := map[string]map[string]any{}
	for _, v := range list(pod["volumes"]) {
		volumes[str(dig(v, "name"))] = mapOf(v)
	}
	mounts := map[string]string{} // mountPath -> volume
	for _, m := range list(c["volumeMounts"]) {
		if _, ok := volumes[str(dig(m, "name"))]; !ok {
			p.add("%s: volumeMount %s has no volume", cname, str(dig(m, "name")))
		}
		mounts[path.Clean(str(dig(m, "mountPath")))] = str(dig(m, "name"))
	}
	switch command {
	case "gateway":
		if env["WHATSAPP_APP_SECRET_FILE"] == "" && env["WHATSAPP_APP_SECRET"] == "" {
			p.add("%s: the gateway needs WHATSAPP_APP_SECRET_FILE", cname)
		}
	case "alert":
		if env["WAMETER_ALERT_RULES"] == "" {
			p.add("%s: the alert service needs WAMETER_ALERT_RULES", cname)
		}
	}
	for _, v := range fileVars[command] {
		file := env[v]
		if file == "" {
			continue
		}
		dir, base := path.Split(path.Clean(file))
		vol, ok := mounts[path.Clean(dir)]
		if !ok {
			p.add("%s: %s=%s: no volume is mounted at %s", cname, v, file, dir)
			continue
		}
		spec := volumes[vol]
		var kind, name string
		var items []any
		switch {
		case spec["secret"] != nil:
			kind, name, items = "Secret", str(dig(spec, "secret", "secretName")), list(dig(spec, "secret", "items"))
		case spec["configMap"] != nil:
			kind, name, items = "ConfigMap", str(dig(spec, "configMap", "name")), list(dig(spec, "configMap", "items"))
		default:
			p.add("%s: %s=%s: volume %s is neither a Secret nor a ConfigMap", cname, v, file, vol)
			continue
		}
		src, ok := get(kind, name)
		if !ok {
			p.add("%s: volume %s: %s %s does not exist", cname, vol, kind, name)
			continue
		}
		keys := map[string]bool{}
		for _, field := range []string{"data", "stringData", "binaryData"} {
			for k := range mapOf(src.m[field]) {
				keys[k] = true
			}
		}
		found := false
		if len(items) == 0 {
			found = keys[base]
		}
		for _, it := range items {
			if !keys[str(dig(it, "key"))] {
				p.add("%s: volume %s: item key %s is not in %s %s", cname, vol, str(dig(it, "key")), kind, name)
			}
			if str(dig(it, "path")) == base {
				found = true
			}
		}
		if !found {
			p.add("%s: %s=%s: volume %s (%s %s) provides no file %s", cname, v, file, vol, kind, name, base)
		}
	}
}

// checkResources checks requests and limits and returns the CPU request in
// millicores.
func checkResources(c map[string]any, p *problems, cname string) int64 {
	res := mapOf(c["resources"])
	var cpuReq int64
	for _, r := range []string{"cpu", "memory"} {
		req, okReq := quantity(str(dig(res, "requests", r)), r == "cpu")
		lim, okLim := quantity(str(dig(res, "limits", r)), r == "cpu")
		if !okReq || !okLim {
			p.add("%s: resources.requests.%s and resources.limits.%s must be set", cname, r, r)
			continue
		}
		if req > lim {
			p.add("%s: %s request above its limit", cname, r)
		}
		if r == "cpu" {
			cpuReq = req
			if lim > maxCPULimitMilli {
				p.add("%s: CPU limit %dm is more than a 2-core node", cname, lim)
			}
		}
	}
	return cpuReq
}

// quantity parses a Kubernetes quantity: CPU in millicores, memory in bytes.
func quantity(s string, cpu bool) (int64, bool) {
	if s == "" {
		return 0, false
	}
	if cpu {
		if v, ok := strings.CutSuffix(s, "m"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
		f, err := strconv.ParseFloat(s, 64)
		return int64(f * 1000), err == nil
	}
	for suffix, mult := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "K": 1e3, "M": 1e6, "G": 1e9} {
		if v, ok := strings.CutSuffix(s, suffix); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n * mult, err == nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// checkOps: the probes and the scrape annotations point at the port the
// command's ops server listens on, on all interfaces.
func checkOps(o object, c map[string]any, env map[string]string, command string, p *problems, cname string) {
	v, def := opsAddrVar(command)
	addr := env[v]
	if addr == "" {
		addr = def
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add("%s: %s=%q: %v", cname, v, addr, err)
		return
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		p.add("%s: ops server on %s=%s listens on loopback: the kubelet's probes and Prometheus cannot reach it", cname, v, addr)
	}
	ports := map[string]string{}
	for _, cp := range list(c["ports"]) {
		ports[str(dig(cp, "name"))] = str(dig(cp, "containerPort"))
	}
	resolve := func(x any) string {
		if s, ok := x.(string); ok {
			return ports[s]
		}
		return str(x)
	}
	for probe, wantPath := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		get := dig(c, probe, "httpGet")
		if get == nil {
			p.add("%s: %s (httpGet %s on the ops port) missing", cname, probe, wantPath)
			continue
		}
		if str(dig(get, "path")) != wantPath {
			p.add("%s: %s path %q, want %s", cname, probe, str(dig(get, "path")), wantPath)
		}
		if got := resolve(dig(get, "port")); got != port {
			p.add("%s: %s port %v resolves to %q, but the ops server listens on %s (%s)", cname, probe, dig(get, "port"), got, port, v)
		}
	}
	ann := mapOf(dig(o.m, "spec", "template", "metadata", "annotations"))
	if str(ann["prometheus.io/scrape"]) != "true" || str(ann["prometheus.io/port"]) != port {
		p.add("%s: pod annotations prometheus.io/scrape \"true\" and prometheus.io/port %q (the ops port) missing", o, port)
	}
}

func partitionsOf(env map[string]string) (int, bool) {
	if v, ok := env["WAMETER_PARTITIONS"]; ok {
		return intOf(v)
	}
	return 4, true // the default of WAMETER_PARTITIONS
}

func hpaMin(objs []object, deployment string) int {
	for _, o := range objs {
		if o.kind() == "HorizontalPodAutoscaler" && str(dig(o.m, "spec", "scaleTargetRef", "name")) == deployment {
			if n, ok := intOf(dig(o.m, "spec", "minReplicas")); ok {
				return n
			}
		}
	}
	return 1
}

func podLabels(o object) map[string]any {
	return mapOf(dig(o.m, "spec", "template", "metadata", "labels"))
}

func selects(selector, labels map[string]any) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if str(labels[k]) != str(v) {
			return false
		}
	}
	return true
}

func hasPDB(o object, pdbs []object) bool {
	for _, pdb := range pdbs {
		n, ok := intOf(dig(pdb.m, "spec", "minAvailable"))
		if ok && n >= 1 && selects(mapOf(dig(pdb.m, "spec", "selector", "matchLabels")), podLabels(o)) {
			return true
		}
	}
	return false
}

// checkGateway: a Service routes to the port WAMETER_GATEWAY_ADDR listens
// on, and an HPA scales the Deployment.
func checkGateway(o object, c map[string]any, env map[string]string, services, hpas []object, p *problems) {
	addr := env["WAMETER_GATEWAY_ADDR"]
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "127.0.0.1" || host == "localhost" {
		p.add("%s: WAMETER_GATEWAY_ADDR=%q must listen on all interfaces", o, addr)
	}
	ports := map[string]string{}
	for _, cp := range list(c["ports"]) {
		ports[str(dig(cp, "name"))] = str(dig(cp, "containerPort"))
	}
	routed := false
	for _, s := range services {
		if !selects(mapOf(dig(s.m, "spec", "selector")), podLabels(o)) {
			continue
		}
		for _, sp := range list(dig(s.m, "spec", "ports")) {
			tp := dig(sp, "targetPort")
			if name, ok := tp.(string); ok {
				tp = ports[name]
			}
			if str(tp) == port {
				routed = true
			}
		}
	}
	if !routed {
		p.add("%s: no Service routes to the gateway port %s", o, port)
	}
	scaled := false
	for _, h := range hpas {
		ref := mapOf(dig(h.m, "spec", "scaleTargetRef"))
		minR, ok1 := intOf(dig(h.m, "spec", "minReplicas"))
		maxR, ok2 := intOf(dig(h.m, "spec", "maxReplicas"))
		if str(ref["kind"]) == "Deployment" && str(ref["name"]) == o.name() && ok1 && ok2 && minR >= 1 && minR <= maxR {
			scaled = true
		}
	}
	if !scaled {
		p.add("%s: no HorizontalPodAutoscaler (minReplicas >= 1, <= maxReplicas) targets it", o)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkAccounts: the accounts file shipped in a ConfigMap is one the
// pipeline accepts at start (strict parse, valid values, a rate card in
// each currency of the built-in pricing data).
func checkAccounts(o object, data string, p *problems) {
	book, err := accounts.Parse([]byte(data))
	if err != nil {
		p.add("%s: accounts.yaml: %v", o, err)
		return
	}
	cat, err := defaultPricing()
	if err != nil {
		p.add("built-in pricing data: %v", err)
		return
	}
	if err := book.Validate(cat.HasCurrency); err != nil {
		p.add("%s: accounts.yaml: %v", o, err)
	}
}

// defaultPricing is pricing.Default, loaded once for all the checks.
var defaultPricing = sync.OnceValues(pricing.Default)
