package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/agent"
)

// readFile returns a packaging file's text, path relative to deploy/.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// agentFlags returns the flag names `shoal agent` and the global options
// declare, read from the CLI's source, so that the packaging files can be
// checked to use only flags that exist.
func agentFlags(t *testing.T) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`Name:\s*"([a-z][a-z0-9-]*)"`)
	flags := map[string]bool{}
	for _, f := range []string{"../cmd/shoal/agent.go", "../cmd/shoal/cli.go"} {
		for _, m := range re.FindAllStringSubmatch(readFile(t, f), -1) {
			flags[m[1]] = true
		}
	}
	if !flags["bind"] || !flags["http-addr"] {
		t.Fatalf("found no agent flags in cmd/shoal (got %v): has the CLI moved?", flags)
	}
	return flags
}

// checkFlags reports every --flag in args that `shoal agent` does not have.
func checkFlags(t *testing.T, where string, args []string) {
	t.Helper()
	flags := agentFlags(t)
	for _, a := range args {
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "=")
		if !flags[name] {
			t.Errorf("%s: shoal agent has no flag --%s", where, name)
		}
	}
}

// run runs a validator in dir and fails the test with its output if it
// fails or, when quiet is set, says anything at all.
func run(t *testing.T, dir string, env []string, quiet bool, name string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || (quiet && len(bytes.TrimSpace(out)) > 0) {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s: ok", name, strings.Join(args, " "))
}

func TestVagrantfile(t *testing.T) {
	if _, err := os.Stat("vagrant/provision.sh"); err != nil {
		t.Fatal(err)
	}
	switch {
	case lookPath("vagrant"):
		// Validates the configuration itself (the provisioner's path, the
		// network settings) without a provider. The dot directory goes to
		// a temporary one, not the source tree.
		run(t, "..", []string{"VAGRANT_DOTFILE_PATH=" + filepath.Join(t.TempDir(), "vagrant")}, false,
			"vagrant", "validate", "-p")
	case lookPath("ruby"):
		run(t, "..", nil, false, "ruby", "-c", "Vagrantfile")
	default:
		t.Skip("neither vagrant nor ruby is on PATH: cannot check the Vagrantfile")
	}
}

func TestProvisionScriptSyntax(t *testing.T) {
	if !lookPath("bash") {
		t.Skip("bash is not on PATH")
	}
	run(t, ".", nil, true, "bash", "-n", "vagrant/provision.sh")
}

func lookPath(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// unit is a systemd unit file: section, then key, then the values of every
// assignment of the key in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, text string) unit {
	t.Helper()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("shoal.service:%d: not a key=value in a section: %q", n, line)
			}
			k = strings.TrimSpace(k)
			u[section][k] = append(u[section][k], strings.TrimSpace(v))
		}
	}
	return u
}

func TestSystemdUnit(t *testing.T) {
	text := readFile(t, "systemd/shoal.service")
	u := parseUnit(t, text)
	svc := u["Service"]
	if svc == nil {
		t.Fatal("shoal.service has no [Service] section")
	}
	// The last assignment wins in systemd, except that an empty one resets
	// a list; the keys checked here are set once.
	want := map[string]string{
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"NoNewPrivileges":         "yes",
		"StateDirectory":          "shoal",
		"ConfigurationDirectory":  "shoal",
		"CapabilityBoundingSet":   "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"Restart":                 "on-failure",
	}
	for k, v := range want {
		got, ok := svc[k]
		if !ok {
			t.Errorf("[Service] %s is missing; want %q", k, v)
			continue
		}
		if last := got[len(got)-1]; last != v {
			t.Errorf("[Service] %s=%q; want %q", k, last, v)
		}
	}
	if got := svc["SystemCallFilter"]; !slices.Contains(got, "@system-service") {
		t.Errorf("[Service] SystemCallFilter=%q; want @system-service among them", got)
	}
	// An unprivileged user: DynamicUser, or a named User that is not root.
	dyn := slices.Contains(svc["DynamicUser"], "yes")
	user := svc["User"]
	if !dyn && (len(user) == 0 || user[len(user)-1] == "root" || user[len(user)-1] == "0") {
		t.Errorf("[Service] runs as root: want DynamicUser=yes or a User other than root")
	}
	if u["Install"] == nil || !slices.Contains(u["Install"]["WantedBy"], "multi-user.target") {
		t.Error("[Install] WantedBy=multi-user.target is missing")
	}

	if env := svc["EnvironmentFile"]; len(env) != 1 || env[0] != "/etc/shoal/gossip.env" {
		t.Errorf("EnvironmentFile=%q; want the gossip key from /etc/shoal/gossip.env (required, no '-')", env)
	}
	execStart := svc["ExecStart"]
	if len(execStart) != 1 {
		t.Fatalf("[Service] ExecStart=%q; want exactly one", execStart)
	}
	args := strings.Fields(execStart[0])
	if len(args) < 2 || args[1] != "agent" {
		t.Fatalf("ExecStart=%q; want `shoal agent ...`", execStart[0])
	}
	checkFlags(t, "shoal.service ExecStart", args[2:])
	// The config directory systemd makes is the one the agent reads, and the
	// state directory the one it writes.
	if !strings.Contains(execStart[0], "/etc/shoal/") || !strings.Contains(execStart[0], "/var/lib/shoal") {
		t.Errorf("ExecStart=%q; want the config in /etc/shoal and the data dir /var/lib/shoal", execStart[0])
	}

	t.Run("systemd-analyze", func(t *testing.T) {
		if !lookPath("systemd-analyze") {
			t.Skip("systemd-analyze is not on PATH")
		}
		// verify also wants ExecStart's binary to exist: point it at this
		// test binary, which surely does.
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "shoal.service")
		local := strings.ReplaceAll(text, args[0], self)
		if err := os.WriteFile(path, []byte(local), 0o644); err != nil {
			t.Fatal(err)
		}
		// verify exits 0 on unknown keys and bad values, only warning:
		// any output at all is a failure.
		run(t, ".", []string{"SYSTEMD_LOG_COLOR=0"}, true, "systemd-analyze", "verify", path)
	})
}

// stage is one FROM stage of a Dockerfile: its FROM line and the
// instructions after it, continuation lines joined.
type stage struct {
	from  string
	instr []string
}

func parseDockerfile(text string) []stage {
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		if kw, rest, _ := strings.Cut(line, " "); strings.EqualFold(kw, "FROM") {
			stages = append(stages, stage{from: strings.TrimSpace(rest)})
		} else if len(stages) > 0 {
			stages[len(stages)-1].instr = append(stages[len(stages)-1].instr, line)
		}
	}
	for _, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		if cur.Len() == 0 && strings.HasPrefix(line, "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return stages
}

// args returns the arguments of every instruction kw in s.
func (s stage) args(kw string) []string {
	var out []string
	for _, in := range s.instr {
		k, rest, _ := strings.Cut(in, " ")
		if strings.EqualFold(k, kw) {
			out = append(out, strings.TrimSpace(rest))
		}
	}
	return out
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(readFile(t, "docker/Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages; want a builder and a final stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(build.from, "golang:1.26") {
		t.Errorf("builder is FROM %q; want golang:1.26", build.from)
	}
	if runs := strings.Join(build.args("RUN"), "\n"); !strings.Contains(runs, "CGO_ENABLED=0") {
		t.Errorf("builder does not build with CGO_ENABLED=0:\n%s", runs)
	}
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("final stage is FROM %q; want distroless static or scratch", final.from)
	}

	users := final.args("USER")
	if len(users) == 0 {
		t.Fatal("the final stage sets no USER: the agent would run as root")
	}
	user, _, _ := strings.Cut(users[len(users)-1], ":")
	if user == "root" || user == "0" || user == "" {
		t.Errorf("the final stage's USER is %q; want a non-root user", users[len(users)-1])
	}

	exposed := strings.Fields(strings.Join(final.args("EXPOSE"), " "))
	for _, p := range []string{"7946/tcp", "7946/udp", "8500", "8600/udp"} {
		if !slices.Contains(exposed, p) && !slices.Contains(exposed, p+"/tcp") {
			t.Errorf("the final stage does not EXPOSE %s (it exposes %v)", p, exposed)
		}
	}
}

// yamlDoc returns the document of a multi-document YAML file that has
// `kind: <kind>` at the top level.
func yamlDoc(t *testing.T, text, kind string) string {
	t.Helper()
	for doc := range strings.SplitSeq(text, "\n---\n") {
		if slices.Contains(strings.Split(doc, "\n"), "kind: "+kind) {
			return doc
		}
	}
	t.Fatalf("no document of kind %s", kind)
	return ""
}

// block returns the lines nested under the first line that is exactly
// key (ignoring indentation) at or after from, and the index after them.
func block(lines []string, from int, key string) ([]string, int, error) {
	for i := from; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != key {
			continue
		}
		indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
		j := i + 1
		for ; j < len(lines); j++ {
			l := lines[j]
			if strings.TrimSpace(l) != "" && len(l)-len(strings.TrimLeft(l, " ")) <= indent {
				break
			}
		}
		return lines[i+1 : j], j, nil
	}
	return nil, 0, errors.New("no " + key)
}

func trimmed(lines []string) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			l, _, _ = strings.Cut(l, " #")
			out = append(out, l)
		}
	}
	return out
}

func TestDaemonSet(t *testing.T) {
	ds := yamlDoc(t, readFile(t, "kubernetes/daemonset.yaml"), "DaemonSet")
	lines := strings.Split(ds, "\n")
	podSpec, _, err := block(lines, 0, "spec:")
	if err != nil {
		t.Fatal(err)
	}
	all := trimmed(lines)
	for _, want := range []string{
		"apiVersion: apps/v1",
		"hostNetwork: true",
		"dnsPolicy: ClusterFirstWithHostNet",
		"path: /v1/status/leader",
		"path: /var/lib/shoal",
	} {
		if !slices.Contains(all, want) {
			t.Errorf("the DaemonSet has no %q", want)
		}
	}

	// The agent's container: non-root, probed, with resources and the
	// flags the agent has.
	containers, _, err := block(podSpec, 0, "containers:")
	if err != nil {
		t.Fatal(err)
	}
	c := trimmed(containers)
	for _, want := range []string{"runAsNonRoot: true", "readinessProbe:", "resources:", "mountPath: /var/lib/shoal"} {
		if !slices.Contains(c, want) {
			t.Errorf("the shoal container has no %q", want)
		}
	}
	if slices.Contains(c, "runAsUser: 0") || slices.Contains(c, "runAsNonRoot: false") {
		t.Error("a container in containers: runs as root")
	}
	argLines, _, err := block(containers, 0, "args:")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, l := range trimmed(argLines) {
		a, ok := strings.CutPrefix(l, "- ")
		if !ok {
			t.Fatalf("args: %q is not a list item", l)
		}
		args = append(args, strings.Trim(a, `"'`))
	}
	if len(args) == 0 || args[0] != "agent" {
		t.Fatalf("args %q; want `agent ...`", args)
	}
	checkFlags(t, "daemonset.yaml args", args[1:])
	// Secure defaults: gossip key and ACLs from the Secret.
	for _, want := range []string{"- name: SHOAL_ENCRYPT", "secretKeyRef:", "name: shoal-secrets", "mountPath: /etc/shoal"} {
		if !slices.Contains(c, want) {
			t.Errorf("the shoal container has no %q", want)
		}
	}
	if !slices.Contains(all, "secretName: shoal-secrets") {
		t.Error("the DaemonSet mounts no shoal-secrets")
	}
	for _, flag := range []string{"--bind=", "--retry-join=", "--data-dir=/var/lib/shoal", "--config=/etc/shoal/acl.json"} {
		if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, flag) }) {
			t.Errorf("args %q have no %s", args, flag)
		}
	}
}

// The example ACL file the DaemonSet's comment points to loads as an agent
// config, denies by default, and lets requests without a token read.
func TestACLExample(t *testing.T) {
	f, err := agent.LoadConfigFile(filepath.Join("kubernetes", "acl.example.json"))
	if err != nil {
		t.Fatal(err)
	}
	if f.ACL == nil || !f.ACL.Enabled || f.ACL.DefaultPolicy != "deny" || f.ACL.Default == "" {
		t.Fatalf("acl.example.json: %+v", f.ACL)
	}
	res, err := acl.NewResolver(*f.ACL)
	if err != nil {
		t.Fatal(err)
	}
	anon, _ := res.Resolve("")
	if !anon.Can(acl.Service, "web", acl.Read) || anon.Can(acl.Service, "web", acl.Write) || anon.Can(acl.Agent, "node", acl.Write) {
		t.Error("requests without a token must read services and nothing more")
	}
}
