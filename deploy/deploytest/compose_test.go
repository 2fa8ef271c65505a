package deploytest

import (
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

const composePath = "docker-compose.yml"

type composeService struct {
	Image       string   `yaml:"image"`
	Build       any      `yaml:"build"`
	Command     any      `yaml:"command"`
	Environment any      `yaml:"environment"`
	Volumes     []any    `yaml:"volumes"`
	Profiles    []string `yaml:"profiles"`
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

func parseCompose(data []byte) (composeFile, error) {
	var cf composeFile
	err := yaml.Unmarshal(data, &cf)
	return cf, err
}

// env is the service's environment, from a map or a KEY=VALUE list.
func (s composeService) env() map[string]string {
	out := map[string]string{}
	switch e := s.Environment.(type) {
	case map[string]any:
		for k, v := range e {
			out[k] = str(v)
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(str(kv), "=")
			out[k] = v
		}
	}
	return out
}

// mounts maps container paths to the bundle path of their bind-mount source
// (./deploy/x -> deploy/x); named volumes map to "".
func (s composeService) mounts() map[string]string {
	out := map[string]string{}
	for _, v := range s.Volumes {
		var src, dst string
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				continue
			}
			src, dst = parts[0], parts[1]
		case map[string]any:
			src, dst = str(v["source"]), str(v["target"])
		}
		if strings.HasPrefix(src, "./") {
			src = path.Clean(strings.TrimPrefix(src, "./"))
		} else {
			src = ""
		}
		out[dst] = src
	}
	return out
}

// dockerfile is the Dockerfile a service builds from, or "".
func (s composeService) dockerfile() string {
	if b, ok := s.Build.(map[string]any); ok {
		return str(b["dockerfile"])
	}
	return ""
}

// wameterCommand is the wameter subcommand of a service built from the
// wameter Dockerfile ("" for other services; all-in-one when it has none).
func (s composeService) wameterCommand() string {
	if s.dockerfile() != "deploy/docker/Dockerfile" {
		return ""
	}
	switch c := s.Command.(type) {
	case []any:
		if len(c) > 0 {
			return str(c[0])
		}
	case string:
		if f := strings.Fields(c); len(f) > 0 {
			return f[0]
		}
	}
	if len(s.Profiles) > 0 {
		return "" // a tools container: runs whatever `docker compose run` says
	}
	return "all-in-one"
}

// composeRequired are the services docker-compose.yml must keep or have.
var composeRequired = map[string]string{
	"kafka": "", "clickhouse": "", "wameter": "all-in-one", "wameter-tools": "",
	"gateway": "gateway", "alert": "alert", "prometheus": "", "grafana": "",
}

// checkCompose validates docker-compose.yml: the services, their commands,
// the documented environment of the wameter services, ops addresses that
// Prometheus can reach, and bind mounts that exist.
func checkCompose(b bundle, root string, doc envDoc) (composeFile, problems) {
	var p problems
	cf, err := parseCompose(b[composePath])
	if err != nil {
		p.add("%s: parse: %v", composePath, err)
		return cf, p
	}
	for name, cmd := range composeRequired {
		svc, ok := cf.Services[name]
		if !ok {
			p.add("%s: service %s missing", composePath, name)
			continue
		}
		if cmd != "" && svc.wameterCommand() != cmd {
			p.add("%s: service %s must run `wameter %s` from deploy/docker/Dockerfile", composePath, name, cmd)
		}
	}
	for name, svc := range cf.Services {
		if df := svc.dockerfile(); df != "" {
			if _, err := os.Stat(filepath.Join(root, df)); err != nil {
				p.add("%s: service %s builds from %s: %v", composePath, name, df, err)
			}
		}
		for dst, src := range svc.mounts() {
			if src != "" && strings.HasPrefix(src, "deploy/") && !b.hasPath(src) {
				p.add("%s: service %s mounts ./%s at %s, which does not exist", composePath, name, src, dst)
			}
		}
		if svc.dockerfile() != "deploy/docker/Dockerfile" {
			continue
		}
		env := svc.env()
		for _, k := range sortedKeys(env) {
			if !doc.documents(k) && knownExtras[k] == "" {
				p.add("%s: service %s: environment variable %s is not documented (README contract tables) nor a known extra", composePath, name, k)
			}
		}
		command := svc.wameterCommand()
		if command == "" {
			continue
		}
		v, def := opsAddrVar(command)
		addr := env[v]
		if addr == "" {
			addr = def
		}
		if host, _, err := net.SplitHostPort(addr); err != nil || host == "127.0.0.1" || host == "localhost" {
			p.add("%s: service %s: %s=%q: the ops server must listen on all interfaces for Prometheus", composePath, name, v, addr)
		}
		if command == "gateway" {
			if a := env["WAMETER_GATEWAY_ADDR"]; a == "" || strings.HasPrefix(a, "127.") {
				p.add("%s: service gateway: WAMETER_GATEWAY_ADDR must listen on all interfaces", composePath)
			}
		}
	}
	return cf, p
}
