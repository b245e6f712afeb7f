package agent

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// writeConfig writes a config file into a temporary directory.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfigFile(t *testing.T) {
	tests := []struct {
		name string
		file string
		want FileConfig
	}{
		{name: "empty object", file: `{}`, want: FileConfig{}},
		{
			name: "every agent key",
			file: `{
				"node_name": "web-1", "datacenter": "east",
				"bind_addr": "{{ GetPrivateIP }}", "advertise_addr": "10.0.0.2",
				"client_addr": "0.0.0.0",
				"addresses": {"http": "127.0.0.2"},
				"ports": {"serf_lan": 8301, "http": 8501},
				"retry_join": ["10.0.0.3", "10.0.0.4:8301"], "start_join": ["10.0.0.5"],
				"retry_interval": "5s", "retry_max": 3, "reconnect_interval": "1m", "epoch_max_skew": "8760h",
				"data_dir": "/var/lib/shoal", "encrypt": "` + testKey + `",
				"log_level": "DEBUG", "log_json": true
			}`,
			want: FileConfig{
				NodeName: new("web-1"), Datacenter: new("east"),
				BindAddr: new("{{ GetPrivateIP }}"), AdvertiseAddr: new("10.0.0.2"),
				ClientAddr: new("0.0.0.0"), HTTPAddress: new("127.0.0.2"),
				SerfLANPort: new(8301), HTTPPort: new(8501),
				RetryJoin: []string{"10.0.0.3", "10.0.0.4:8301"}, StartJoin: []string{"10.0.0.5"},
				RetryInterval: new(5 * time.Second), RetryMax: new(3), ReconnectInterval: new(time.Minute),
				EpochMaxSkew: new(8760 * time.Hour),
				DataDir:      new("/var/lib/shoal"), Encrypt: new(testKey),
				LogLevel: new("DEBUG"), LogJSON: new(true),
			},
		},
		{
			name: "null is left out, an empty list is kept",
			file: `{"node_name": null, "ports": {"http": null}, "retry_join": [], "service": null}`,
			want: FileConfig{RetryJoin: []string{}},
		},
		{
			name: "one service, snake_case, with a check",
			file: `{"service": {
				"name": "web", "id": "web-1", "tags": ["v1", "primary"], "address": "10.0.0.9", "port": 8080,
				"meta": {"Version": "1.2", "build_id": "x"},
				"weights": {"passing": 3, "warning": 1},
				"enable_tag_override": true,
				"tagged_addresses": {"lan_ipv4": {"address": "10.0.0.9", "port": 8080}},
				"check": {
					"check_id": "web-http", "name": "HTTP", "http": "http://localhost:8080/health",
					"method": "POST", "body": "{}", "header": {"X-Token": ["a", "b"], "accept_encoding": ["gzip"]},
					"interval": "10s", "timeout": "1s", "tls_skip_verify": true, "notes": "n", "status": "passing",
					"deregister_critical_service_after": "90m",
					"success_before_passing": 2, "failures_before_critical": 3
				}
			}}`,
			want: FileConfig{Services: []api.AgentServiceRegistration{{
				Name: "web", ID: "web-1", Tags: []string{"v1", "primary"}, Address: "10.0.0.9", Port: 8080,
				Meta:              map[string]string{"Version": "1.2", "build_id": "x"},
				Weights:           &api.AgentWeights{Passing: 3, Warning: 1},
				EnableTagOverride: true,
				TaggedAddresses:   map[string]api.ServiceAddress{"lan_ipv4": {Address: "10.0.0.9", Port: 8080}},
				Check: &api.AgentServiceCheck{
					CheckID: "web-http", Name: "HTTP", HTTP: "http://localhost:8080/health",
					Method: "POST", Body: "{}", Header: map[string][]string{"X-Token": {"a", "b"}, "accept_encoding": {"gzip"}},
					Interval: "10s", Timeout: "1s", TLSSkipVerify: true, Notes: "n", Status: "passing",
					DeregisterCriticalServiceAfter: "90m",
					SuccessBeforePassing:           2, FailuresBeforeCritical: 3,
				},
			}}},
		},
		{
			name: "services, CamelCase, with checks",
			file: `{"services": [
				{"Name": "db", "Port": 5432, "Checks": [
					{"CheckID": "db-tcp", "TCP": "localhost:5432", "Interval": "5s", "DeregisterCriticalServiceAfter": "1h"},
					{"ID": "db-ttl", "TTL": "30s", "TLSSkipVerify": false}
				]},
				{"Name": "cache", "ID": "cache-2", "Port": 6379, "Check": {"Args": ["/bin/true"], "Interval": "1m"}}
			]}`,
			want: FileConfig{Services: []api.AgentServiceRegistration{
				{Name: "db", Port: 5432, Checks: []*api.AgentServiceCheck{
					{CheckID: "db-tcp", TCP: "localhost:5432", Interval: "5s", DeregisterCriticalServiceAfter: "1h"},
					{CheckID: "db-ttl", TTL: "30s"},
				}},
				{Name: "cache", ID: "cache-2", Port: 6379, Check: &api.AgentServiceCheck{Args: []string{"/bin/true"}, Interval: "1m"}},
			}},
		},
		{
			name: "service and services together, in that order",
			file: `{"services": [{"name": "b", "port": 2}], "service": {"name": "a", "port": 1, "check": {"id": "a-ttl", "ttl": "10s"}}}`,
			want: FileConfig{Services: []api.AgentServiceRegistration{
				{Name: "b", Port: 2},
				{Name: "a", Port: 1, Check: &api.AgentServiceCheck{CheckID: "a-ttl", TTL: "10s"}},
			}},
		},
		{
			name: "mixed spellings of service keys",
			file: `{"service": {"NAME": "x", "Port": 1, "enableTagOverride": true, "check": {"script_args": ["a"], "Tls_Skip_Verify": true}}}`,
			want: FileConfig{Services: []api.AgentServiceRegistration{{
				Name: "x", Port: 1, EnableTagOverride: true,
				Check: &api.AgentServiceCheck{Args: []string{"a"}, TLSSkipVerify: true},
			}}},
		},
		{
			name: "Consul log level and IPv6 client address",
			file: `{"log_level": "TRACE", "client_addr": "::1", "ports": {"serf_lan": 0}}`,
			want: FileConfig{LogLevel: new("TRACE"), ClientAddr: new("::1"), SerfLANPort: new(0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadConfigFile(writeConfig(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				g, _ := json.MarshalIndent(got, "", "  ")
				w, _ := json.MarshalIndent(tt.want, "", "  ")
				t.Errorf("got  %s\nwant %s", g, w)
			}
		})
	}
}

func TestConfigFileErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string // the error after "config.json:", from the line or the key on
	}{
		{"syntax error gives the line", "{\n  \"node_name\": \"a\",\n  \"datacenter\": \"b\"\n  \"data_dir\": \"c\"\n}", `4:3: invalid JSON: invalid character '"' after object key:value pair`},
		{"trailing comma", "{\n\"retry_join\": [\"a\",]\n}", `2:20: invalid JSON`},
		{"truncated", "{\"node_name\": \"a\",\n", `2:1: invalid JSON: unexpected end of file`},
		{"empty", " \n", `empty; expected a JSON object`},
		{"not an object", `["node_name"]`, `1:1: expected a JSON object, got an array`},
		{"data after the object", "{}\n{}", `2:1: unexpected data after the JSON object`},
		{"duplicate key", "{\"datacenter\": \"a\",\n\"datacenter\": \"b\"}", `2:1: key "datacenter" is given twice (first on line 1)`},
		{"unknown top-level key", "{\n  \"server\": true}", `2:3: server: unknown key`},
		{"encrypt_verify_incoming not a bool", `{"encrypt_verify_incoming": "no"}`, `encrypt_verify_incoming: expected true or false, got a string`},
		{"tls unknown key", `{"tls": {"defaults": {"cert": "a"}}}`, `tls.defaults.cert: unknown key`},
		{"tls not defaults", `{"tls": {"https": {}}}`, `tls.https: unknown key`},
		{"verify_incoming not a bool", `{"verify_incoming": "yes"}`, `verify_incoming: expected true or false, got a string`},
		{"limits unknown key", `{"limits": {"rpc_rate": 1}}`, `limits.rpc_rate: unknown key`},
		{"self_preservation share too big", `{"self_preservation": {"share": 1}}`, `self_preservation.share: 1 must be a number above 0 and below 1`},
		{"self_preservation enabled not a bool", `{"self_preservation": {"enabled": "no"}}`, `self_preservation.enabled: expected true or false, got a string`},
		{"log_json not a bool", `{"log_json": 1}`, `log_json: expected true or false, got a number`},
		{"node meta TXT not a bool", `{"dns_config": {"enable_additional_node_meta_txt": "yes"}}`, `dns_config.enable_additional_node_meta_txt: expected true or false, got a string`},
		{"self_preservation unknown key", `{"self_preservation": {"threshold": 0.5}}`, `self_preservation.threshold: unknown key`},
		{"self_preservation window not a duration", `{"self_preservation": {"window": 30}}`, `self_preservation.window: expected a duration`},
		{"self_preservation min_members 1", `{"self_preservation": {"min_members": 1}}`, `self_preservation.min_members: 1 is out of range`},
		{"limits negative", `{"limits": {"http_max_conns_per_client": -1}}`, `limits.http_max_conns_per_client: -1 is out of range`},
		{"http_config unknown key", `{"http_config": {"allowed_host": ["a"]}}`, `http_config.allowed_host: unknown key`},
		{"acl enabled not a bool", `{"acl": {"enabled": "yes"}}`, `acl.enabled: expected true or false, got a string`},
		{"acl unknown key", `{"acl": {"enabled": true, "tokns": {}}}`, `acl.tokns: unknown key`},
		{"acl bad default policy", `{"acl": {"enabled": true, "default_policy": "maybe"}}`, `1:9: acl: default_policy: "maybe" is not a policy; use allow or deny`},
		{"acl unknown rule", `{"acl": {"enabled": true, "policies": [{"name": "p", "rules": {"key_prefix": {}}}]}}`, `acl: policies[0].rules: "key_prefix" is not a rule Shoal knows`},
		{"acl token of an unknown policy", `{"acl": {"enabled": true, "tokens": {"list": [{"secret_id": "s3cr3t", "policies": ["nope"]}]}}}`, `acl: tokens.list[0].policies[0]: no policy is named "nope"`},
		{"acl unknown token key", `{"acl": {"tokens": {"list": [{"secret": "x"}]}}}`, `acl.tokens.list[0].secret: unknown key`},
		{"top-level keys are snake_case", `{"NodeName": "a"}`, `1:2: NodeName: unknown key`},
		{"dev is not a file key", `{"dev": true}`, `dev: unknown key`},
		{"unknown port", `{"ports": {"grpc": 8502}}`, `1:12: ports.grpc: unknown key`},
		{"unknown address", `{"addresses": {"grpc": "127.0.0.1"}}`, `addresses.grpc: unknown key`},
		{"port out of range", `{"ports": {"serf_lan": 70000}}`, `1:24: ports.serf_lan: 70000 is out of range 0-65535`},
		{"negative port", `{"ports": {"http": -1}}`, `ports.http: -1 is out of range 0-65535`},
		{"huge port", `{"ports": {"http": 99999999999999999999}}`, `ports.http: 99999999999999999999 is out of range 0-65535`},
		{"fractional port", `{"ports": {"http": 80.5}}`, `ports.http: 80.5 is not a whole number`},
		{"port as a string", `{"ports": {"http": "8500"}}`, `ports.http: expected a number, got a string`},
		{"ports not an object", `{"ports": 8500}`, `ports: expected an object, got a number`},
		{"bad duration", `{"retry_interval": "3x"}`, `retry_interval: "3x" is not a duration such as "30s"`},
		{"duration as a number", `{"reconnect_interval": 30}`, `reconnect_interval: expected a duration such as "30s", got a number`},
		{"zero duration", `{"retry_interval": "0s"}`, `retry_interval: "0s" must be positive`},
		{"negative retry max", `{"retry_max": -1}`, `retry_max: -1 is out of range 0-2147483647`},
		{"bad node name", `{"node_name": "a.b"}`, `node_name: "a.b" is not DNS-safe`},
		{"bad datacenter", `{"datacenter": ""}`, `datacenter: must not be empty`},
		{"bad key", `{"encrypt": "AAAA"}`, `encrypt: key is 3 bytes`},
		{"bad log level", `{"log_level": "loud"}`, `log_level: "loud" is not one of`},
		{"log_json not a bool", `{"log_json": "yes"}`, `log_json: expected true or false, got a string`},
		{"retry_join not a list", `{"retry_join": "a"}`, `retry_join: expected an array, got a string`},
		{"empty join address", `{"start_join": ["a", " "]}`, `start_join[1]: must not be empty`},
		{"join address not a string", `{"retry_join": [1]}`, `retry_join[0]: expected a string, got a number`},
		{"http address with a port", `{"addresses": {"http": "127.0.0.1:8500"}}`, `addresses.http: "127.0.0.1:8500" is not an IP address or host name (the port is set by ports.http)`},
		{"several client addresses", `{"client_addr": "127.0.0.1 10.0.0.1"}`, `client_addr: "127.0.0.1 10.0.0.1" lists several addresses`},
		{"client template matching nothing", `{"client_addr": "{{ GetInterfaceIP \"no-such-if0\" }}"}`, `client_addr: template`},
		{"unknown service key", "{\"services\": [\n  {\"name\": \"a\", \"port\": 1},\n  {\"name\": \"b\", \"port\": 2, \"check\": {\"ttl\": \"1s\", \"intervall\": \"1s\"}}]}", `3:51: services[1].check.intervall: unknown key`},
		{"unknown key in checks", `{"service": {"name": "a", "port": 1, "checks": [{"ttl": "1s"}, {"Script": "x"}]}}`, `service.checks[1].Script: unknown key`},
		{"unknown key in weights", `{"service": {"name": "a", "port": 1, "weights": {"critical": 1}}}`, `service.weights.critical: unknown key`},
		{"Consul-only service key", `{"service": {"name": "a", "port": 1, "connect": {}}}`, `service.connect: unknown key`},
		{"same field twice", `{"service": {"name": "a", "Name": "b", "port": 1}}`, `service.Name: sets the same field as "name"`},
		{"check id twice", `{"service": {"name": "a", "port": 1, "check": {"id": "x", "check_id": "y"}}}`, `service.check.check_id: sets the same field as "id"`},
		{"service port out of range", `{"services": [{"name": "a", "port": 0}]}`, `1:29: services[0].port: 0 is out of range 1-65535`},
		{"service port missing", `{"services": [{"name": "a"}]}`, `1:15: services[0].port: 0 is out of range 1-65535`},
		{"service port too big for int", `{"service": {"name": "a", "port": 1e400}}`, `service.port: 1e400 is not a whole number in range`},
		{"service port as a string", `{"service": {"name": "a", "port": "80"}}`, `service.port: expected a number, got a string`},
		{"service name missing", `{"service": {"port": 1}}`, `service.name: must not be empty`},
		{"bad service name, CamelCase", `{"service": {"Name": "a b", "Port": 1}}`, `service.Name: "a b" is not DNS-safe`},
		{"bad tag", `{"service": {"name": "a", "port": 1, "Tags": ["x", ""]}}`, `service.Tags[1]: must not be empty`},
		{"bad meta key", `{"service": {"name": "a", "port": 1, "meta": {"a.b": "x"}}}`, `service.meta: key "a.b" must be`},
		{"bad weight", `{"service": {"name": "a", "port": 1, "weights": {"passing": 0, "warning": 1}}}`, `service.weights.passing: 0 is out of range 1-65535`},
		{"kind", `{"service": {"name": "a", "port": 1, "kind": "connect-proxy"}}`, `service.kind: "connect-proxy" is not supported`},
		{"service not an object", `{"services": ["web"]}`, `services[0]: expected an object, got a string`},
		{"services not a list", `{"services": {"name": "a"}}`, `services: expected an array, got an object`},
		{"null check in a list", `{"service": {"name": "a", "port": 1, "checks": [null]}}`, `service.checks[0]: must not be null`},
		{"header values not a list", `{"service": {"name": "a", "port": 1, "check": {"header": {"X": "y"}}}}`, `service.check.header[X]: expected an array, got a string`},
		{"duplicate IDs", `{"services": [{"name": "web", "port": 1}, {"name": "x", "id": "web", "port": 2}]}`, `services[1]: ID "web" is also the ID of services[0]`},
		{"duplicate IDs across service and services", `{"service": {"name": "web", "port": 1}, "services": [{"name": "web", "port": 2}]}`, `services[0]: ID "web" is also the ID of service`},
		{"bad domain", `{"domain": "a_b"}`, `1:12: domain: "a_b" is not a domain name`},
		{"domain not a string", `{"domain": 1}`, `1:12: domain: expected a string`},
		{"dns port out of range", `{"ports": {"dns": -2}}`, `1:19: ports.dns: -2 is out of range -1-65535`},
		{"dns address with a port", `{"addresses": {"dns": "1.2.3.4:53"}}`, `1:23: addresses.dns: "1.2.3.4:53" is not an IP address or host name (the port is set by ports.dns)`},
		{"per-service TTL", `{"dns_config": {"service_ttl": {"web": "1s"}}}`, `1:33: dns_config.service_ttl.web: per-service TTLs are not supported`},
		{"negative TTL", `{"dns_config": {"service_ttl": {"*": "-1s"}}}`, `1:38: dns_config.service_ttl.*: "-1s" is out of range`},
		{"bad TTL", `{"dns_config": {"node_ttl": "soon"}}`, `1:29: dns_config.node_ttl: "soon" is not a duration`},
		{"unknown dns_config key", `{"dns_config": {"only_passing": true}}`, `1:17: dns_config.only_passing: unknown key`},
		{"node meta TXT not a bool", `{"dns_config": {"enable_additional_node_meta_txt": "no"}}`, `1:52: dns_config.enable_additional_node_meta_txt: expected true or false, got a string`},
		{"service_ttl not an object", `{"dns_config": {"service_ttl": "5s"}}`, `1:32: dns_config.service_ttl: expected an object`},
		{"too deep", `{"service": {"name": "a", "port": 1, "meta": ` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`, `invalid JSON: nested more than 32 deep`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.file)
			_, err := LoadConfigFile(path)
			if err == nil {
				t.Fatalf("no error; want %q", tt.want)
			}
			// want may leave out the line and column.
			rest, ok := strings.CutPrefix(err.Error(), path+":")
			if want := tt.want; ok && !lineCol.MatchString(want) {
				rest = lineCol.ReplaceAllString(rest, "")
			}
			if !ok || !strings.HasPrefix(strings.TrimLeft(rest, " "), strings.TrimLeft(tt.want, " ")) {
				t.Errorf("error = %q\nwant %q", err, path+":"+tt.want)
			}
			if _, ok := errors.AsType[*ConfigFileError](err); !ok {
				t.Errorf("error %T is not a *ConfigFileError", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
		})
	}
}

var lineCol = regexp.MustCompile(`^\d+:\d+:`)

func TestConfigFileServiceErrorIsInvalid(t *testing.T) {
	_, err := decodeConfigFile("c.json", []byte(`{"service": {"name": "a", "port": 0}}`))
	if !errors.Is(err, catalog.ErrInvalid) {
		t.Errorf("errors.Is(%v, catalog.ErrInvalid) = false", err)
	}
}

func TestConfigFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.json")
	_, err := LoadConfigFile(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("error = %v, want one naming %s that is os.ErrNotExist", err, path)
	}
}

// Every field of a check, including ones added to api.AgentServiceCheck
// after this was written, is set by its snake_case and its CamelCase key.
func TestConfigFileCheckKeysFollowTheAPIType(t *testing.T) {
	for _, f := range reflect.VisibleFields(reflect.TypeFor[api.AgentServiceCheck]()) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		var val any
		switch f.Type.Kind() {
		case reflect.String:
			val = "x"
		case reflect.Bool:
			val = true
		case reflect.Int, reflect.Int64, reflect.Int32:
			val = 7
		case reflect.Slice:
			val = []string{"x"}
		case reflect.Map:
			val = map[string][]string{"X-Y": {"z"}}
		default:
			t.Logf("%s: %s not covered", f.Name, f.Type)
			continue
		}
		for _, key := range []string{name, snakeCase(name), strings.ToLower(name)} {
			body, _ := json.Marshal(map[string]any{"service": map[string]any{"name": "a", "port": 1, "check": map[string]any{key: val}}})
			fc, err := decodeConfigFile("c.json", body)
			if err != nil {
				t.Errorf("%s: %v", key, err)
				continue
			}
			got := reflect.ValueOf(fc.Services[0].Check).Elem().FieldByIndex(f.Index).Interface()
			want, _ := json.Marshal(val)
			if g, _ := json.Marshal(got); string(g) != string(want) {
				t.Errorf("%s: field %s = %s, want %s", key, f.Name, g, want)
			}
		}
	}
	// Consul's snake_case names, where the api type has the field.
	for key, field := range map[string]string{"grpc_use_tls": "GRPCUseTLS", "tls_skip_verify": "TLSSkipVerify", "grpc": "GRPC", "ttl": "TTL"} {
		f, ok := reflect.TypeFor[api.AgentServiceCheck]().FieldByName(field)
		if !ok {
			continue
		}
		if _, ok := fieldsByKey(reflect.TypeFor[api.AgentServiceCheck]())[normKey(key)]; !ok {
			t.Errorf("%s does not reach %s", key, f.Name)
		}
	}
}

func TestConfigFileApply(t *testing.T) {
	dflt := DefaultConfig()
	with := func(change func(*Config)) Config {
		c := DefaultConfig()
		change(&c)
		return c
	}
	tests := []struct {
		name string
		file string
		base Config
		want Config
	}{
		{"nothing", `{}`, dflt, dflt},
		{"http port only", `{"ports": {"http": 9500}}`, dflt, with(func(c *Config) { c.HTTPAddr = "127.0.0.1:9500" })},
		{"client_addr only", `{"client_addr": "0.0.0.0"}`, dflt, with(func(c *Config) { c.HTTPAddr, c.DNSAddr = "0.0.0.0:8500", "0.0.0.0:8600" })},
		{"addresses.http beats client_addr", `{"addresses": {"http": "10.0.0.1"}, "client_addr": "0.0.0.0", "ports": {"http": 1}}`, dflt,
			with(func(c *Config) { c.HTTPAddr, c.DNSAddr = "10.0.0.1:1", "0.0.0.0:8600" })},
		{"IPv6", `{"client_addr": "::1"}`, dflt, with(func(c *Config) { c.HTTPAddr, c.DNSAddr = "[::1]:8500", "[::1]:8600" })},
		{"keeps the host of the base", `{"ports": {"http": 2}}`, with(func(c *Config) { c.HTTPAddr = "10.1.1.1:1" }),
			with(func(c *Config) { c.HTTPAddr = "10.1.1.1:2" })},
		{"joins", `{"start_join": ["a"], "retry_join": ["b", "c"]}`, dflt,
			with(func(c *Config) { c.Join, c.RetryJoin = []string{"a"}, []string{"b", "c"} })},
		{"an empty list clears", `{"retry_join": []}`, with(func(c *Config) { c.RetryJoin = []string{"x"} }), dflt},
		{"dns port", `{"ports": {"dns": 53}}`, dflt, with(func(c *Config) { c.DNSAddr = "127.0.0.1:53" })},
		{"dns address", `{"addresses": {"dns": "10.0.0.1"}}`, dflt, with(func(c *Config) { c.DNSAddr = "10.0.0.1:8600" })},
		{"addresses.dns beats client_addr", `{"client_addr": "0.0.0.0", "addresses": {"dns": "::1"}}`, dflt,
			with(func(c *Config) { c.HTTPAddr, c.DNSAddr = "0.0.0.0:8500", "[::1]:8600" })},
		{"dns port -1 turns DNS off", `{"client_addr": "0.0.0.0", "ports": {"dns": -1}}`, dflt,
			with(func(c *Config) { c.HTTPAddr, c.DNSAddr = "0.0.0.0:8500", "" })},
		{"client_addr leaves DNS off", `{"client_addr": "0.0.0.0"}`, with(func(c *Config) { c.DNSAddr = "" }),
			with(func(c *Config) { c.HTTPAddr, c.DNSAddr = "0.0.0.0:8500", "" })},
		{"a dns port turns DNS on", `{"ports": {"dns": 8601}}`, with(func(c *Config) { c.DNSAddr = "" }),
			with(func(c *Config) { c.DNSAddr = "127.0.0.1:8601" })},
		{"self_preservation off", `{"self_preservation": {"enabled": false}}`, dflt,
			with(func(c *Config) { c.SelfPreservation.Enabled = false })},
		{"self_preservation tuned", `{"self_preservation": {"share": 0.7, "min_members": 5, "window": "1m", "max": "2m"}}`, dflt,
			with(func(c *Config) {
				c.SelfPreservation = catalog.PreserveConfig{Enabled: true, Share: 0.7, MinMembers: 5, Window: time.Minute, Max: 2 * time.Minute}
			})},
		{"domain and dns TTLs", `{"domain": "consul", "dns_config": {"service_ttl": {"*": "5s"}, "node_ttl": "0s"}}`,
			with(func(c *Config) { c.DNSNodeTTL = time.Minute }),
			with(func(c *Config) { c.Domain, c.DNSServiceTTL = "consul", 5*time.Second })},
		{"node meta TXT off", `{"dns_config": {"enable_additional_node_meta_txt": false}}`, dflt,
			with(func(c *Config) { c.DNSNoNodeMetaTXT = true })},
		{"node meta TXT on", `{"dns_config": {"enable_additional_node_meta_txt": true}}`, with(func(c *Config) { c.DNSNoNodeMetaTXT = true }), dflt},
		{
			"every setting",
			`{"node_name": "n", "datacenter": "d", "bind_addr": "10.0.0.1", "advertise_addr": "10.0.0.2",
			  "ports": {"serf_lan": 8301}, "retry_interval": "5s", "retry_max": 2, "reconnect_interval": "2m",
			  "data_dir": "/d", "encrypt": "` + testKey + `", "log_level": "error", "log_json": true,
			  "service": {"name": "web", "port": 80}}`,
			DevConfig(),
			func() Config {
				c := DevConfig()
				c.NodeName, c.Datacenter, c.BindAddr, c.AdvertiseAddr = "n", "d", "10.0.0.1", "10.0.0.2"
				c.Port, c.RetryInterval, c.RetryMax, c.ReconnectInterval = 8301, 5*time.Second, 2, 2*time.Minute
				c.DataDir, c.EncryptKey = "/d", testKey
				c.Services = []api.AgentServiceRegistration{{Name: "web", Port: 80}}
				return c
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := decodeConfigFile("c.json", []byte(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got := tt.base
			f.Apply(&got)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("config = %+v\nwant     %+v", got, tt.want)
			}
		})
	}
}

const testKey = "Dbt6cP3ja1VpSPpGZJrHi/h+O60AMEb3sDdAL/RMmPA="

func TestParseLogLevel(t *testing.T) {
	for _, s := range []string{"trace", "DEBUG", "info", "Warn", "warning", "err", "ERROR"} {
		if _, err := ParseLogLevel(s); err != nil {
			t.Errorf("ParseLogLevel(%q): %v", s, err)
		}
	}
	if _, err := ParseLogLevel("loud"); err == nil {
		t.Error("ParseLogLevel(loud) did not fail")
	}
}

func FuzzLoadConfig(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"node_name": "a", "ports": {"serf_lan": 1, "http": 2}, "addresses": {"http": "::1"}, "retry_join": ["x"], "retry_interval": "1s"}`,
		`{"service": {"name": "a", "port": 1, "meta": {"k": "v"}, "weights": {"passing": 1}, "check": {"ttl": "1s", "header": {"a": ["b"]}}}}`,
		`{"services": [{"Name": "a", "Port": 1, "Checks": [{"CheckID": "c", "TCP": "x:1"}]}, {"name": "a"}]}`,
		`{"service": {"tagged_addresses": {"lan": {"address": "a", "port": 1e9}}}}`,
		`{"self_preservation": {"enabled": true, "share": 0.25, "min_members": 4, "window": "10s", "max": "1h"}}`,
		"{\"a\":\n[1, 2,]}",
		`[[[[[[`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fc, err := decodeConfigFile("fuzz.json", data)
		if err != nil {
			if fc != nil {
				t.Fatal("a config and an error")
			}
			var cfe *ConfigFileError
			if !errors.As(err, &cfe) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: not one line of *ConfigFileError", err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		cfg := DefaultConfig()
		fc.Apply(&cfg)
		for _, r := range cfg.Services {
			if s, _ := registrationService(r); s.Normalize().Validate() != nil {
				t.Fatalf("accepted a service the catalog refuses: %+v", r)
			}
		}
	})
}
