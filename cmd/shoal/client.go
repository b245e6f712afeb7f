package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/api"
)

// client is the API client a command uses, aimed by --http-addr.
func client(c *cli.Context) *api.Client {
	cl := &api.Client{Addr: httpAddr(c), Token: globalString(c, "token")}
	ca, cert, key := globalString(c, "ca-file"), globalString(c, "client-cert"), globalString(c, "client-key")
	if ca != "" || cert != "" || key != "" {
		cl.HTTPClient = tlsHTTPClient(ca, cert, key)
	}
	return cl
}

func (s *shell) joinCommand() *cli.Command {
	return &cli.Command{
		Name:      "join",
		Usage:     "make the agent join a cluster through other agents",
		UsageText: "shoal join ADDR...",
		Flags:     []cli.Flag{httpAddrFlag(false)},
		Action: func(c *cli.Context) error {
			addrs := c.Args().Slice()
			if len(addrs) == 0 {
				return errors.New("join: missing address (shoal join ADDR...)")
			}
			cl := client(c)
			var errs []error
			for _, a := range addrs {
				err := cl.Join(c.Context, a)
				if errors.Is(err, api.ErrAgentUnreachable) {
					return fmt.Errorf("join: %w", err)
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("join %s: %w", a, err))
					continue
				}
				fmt.Fprintf(s.stdout, "Joined the cluster through %s.\n", a)
			}
			return errors.Join(errs...)
		},
	}
}

func (s *shell) leaveCommand() *cli.Command {
	return &cli.Command{
		Name:      "leave",
		Usage:     "make the agent leave the cluster gracefully and shut down",
		UsageText: "shoal leave",
		Flags:     []cli.Flag{httpAddrFlag(false)},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if err := client(c).Leave(c.Context); err != nil {
				return fmt.Errorf("leave: %w", err)
			}
			fmt.Fprintln(s.stdout, "Graceful leave complete.")
			return nil
		},
	}
}

func (s *shell) membersCommand() *cli.Command {
	return &cli.Command{
		Name:  "members",
		Usage: "list the cluster's members as the agent sees them",
		UsageText: "shoal members [--json]\n" +
			"shoal members --converged [--json]",
		Description: "With --converged, shows the digest of the catalog every serving member last\n" +
			"announced beside this agent's, and exits 1 unless all agree (members\n" +
			"announce about a second after their catalog settles).",
		Flags: []cli.Flag{httpAddrFlag(false), jsonFlag(),
			&cli.BoolFlag{Name: "converged", Usage: "check that every member holds the same catalog"}},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if c.Bool("converged") {
				return s.converged(c)
			}
			members, err := client(c).Members(c.Context)
			if err != nil {
				return fmt.Errorf("members: %w", err)
			}
			if c.Bool("json") {
				return writeJSON(s.stdout, orEmpty(members))
			}
			return membersTable(s.stdout, members)
		},
	}
}

func (s *shell) servicesCommand() *cli.Command {
	return &cli.Command{
		Name:  "services",
		Usage: "list the cluster's services, or the instances of one",
		UsageText: "shoal services [--json]\n" +
			"shoal services NAME [--tag T]... [--node-meta K:V]... [--filter EXPR] [--passing [--warning]] [--json]",
		Flags: append([]cli.Flag{httpAddrFlag(false), jsonFlag()}, instanceFlags()...),
		Action: func(c *cli.Context) error {
			switch c.NArg() {
			case 0:
				if c.IsSet("tag") || c.IsSet("passing") || c.IsSet("warning") || c.IsSet("node-meta") || c.IsSet("filter") {
					return errors.New("services: --tag, --node-meta, --filter, --passing and --warning need a service NAME")
				}
				services, _, err := client(c).CatalogServices(c.Context, nil)
				if err != nil {
					return fmt.Errorf("services: %w", err)
				}
				if c.Bool("json") {
					return writeJSON(s.stdout, orEmptyMap(services))
				}
				return servicesTable(s.stdout, services)
			case 1:
				name := c.Args().First()
				q, err := instanceQuery(c, "services")
				if err != nil {
					return err
				}
				entries, _, err := client(c).HealthService(c.Context, name, q)
				if err != nil {
					return fmt.Errorf("services %s: %w", name, err)
				}
				if c.Bool("json") {
					return writeJSON(s.stdout, orEmpty(entries))
				}
				return instancesTable(s.stdout, entries)
			}
			return fmt.Errorf("services: unexpected argument %q (one service NAME at most)", c.Args().Get(1))
		},
	}
}

// instanceFlags are the flags that narrow a service's instances, as
// health/service does.
func instanceFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "tag", Usage: "only instances with this tag (repeat for several)"},
		&cli.BoolFlag{Name: "passing", Usage: "only instances whose checks all pass"},
		&cli.BoolFlag{Name: "warning", Usage: "with --passing, keep instances whose checks warn too"},
		&cli.StringSliceFlag{Name: "node-meta", Usage: "only instances on nodes with this K:V metadata (repeat for several)"},
		&cli.StringFlag{Name: "filter", Usage: "only instances this expression keeps, such as 'Service.Meta.version == \"2\"' (Consul's filter syntax)"},
	}
}

// instanceQuery reads instanceFlags; cmd names the command in errors.
func instanceQuery(c *cli.Context, cmd string) (*api.QueryOptions, error) {
	if c.Bool("warning") && !c.Bool("passing") {
		return nil, fmt.Errorf("%s: --warning goes with --passing (--passing --warning: every instance not critical)", cmd)
	}
	q := &api.QueryOptions{Tags: c.StringSlice("tag"), Passing: c.Bool("passing"), Warning: c.Bool("warning"), Filter: c.String("filter")}
	var err error
	if q.NodeMeta, err = parseNodeMetaFlag(c.StringSlice("node-meta")); err != nil {
		return nil, fmt.Errorf("%s %s: %w", cmd, c.Args().First(), err)
	}
	return q, nil
}

func (s *shell) registerCommand() *cli.Command {
	return &cli.Command{
		Name:  "register",
		Usage: "register a service instance with the agent",
		UsageText: "shoal register --name N --port P [--id ID] [--address A] [--tag T]... [--meta K=V]...\n" +
			"    [--http-check URL | --tcp-check H:P | --grpc-check H:P[/svc] | --ttl D]\n" +
			"    [--interval D] [--timeout D] [--deregister-critical-after D]",
		Description: "A check given here is the instance's one check, with the ID \"service:<id>\";\n" +
			"report a --ttl check with `shoal check pass service:<id>`.",
		Flags: append([]cli.Flag{
			httpAddrFlag(false),
			&cli.StringFlag{Name: "name", Usage: "the service's name (required)"},
			&cli.IntFlag{Name: "port", Usage: "the instance's port (required)"},
			&cli.StringFlag{Name: "id", Usage: "the instance's ID on this agent", DefaultText: "the name"},
			&cli.StringFlag{Name: "address", Usage: "the instance's address", DefaultText: "the node's address"},
			&cli.StringSliceFlag{Name: "tag", Usage: "a tag (repeat for several)"},
			&cli.StringSliceFlag{Name: "meta", Usage: "a K=V metadata pair (repeat for several)"},
		}, checkFlags(serviceCheckFlags)...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			reg, err := registration(c)
			if err != nil {
				return err
			}
			if err := client(c).Register(c.Context, reg); err != nil {
				return fmt.Errorf("register: %w", err)
			}
			id := reg.ID
			if id == "" {
				id = reg.Name
			}
			fmt.Fprintf(s.stdout, "Registered service %q.\n", id)
			return nil
		},
	}
}

// registration reads the register command's flags. It checks only what
// the flags themselves can get wrong; the agent validates the service.
func registration(c *cli.Context) (*api.AgentServiceRegistration, error) {
	if c.String("name") == "" {
		return nil, errors.New("register: missing --name")
	}
	if !c.IsSet("port") {
		return nil, errors.New("register: missing --port")
	}
	meta, err := parseMeta(c.StringSlice("meta"))
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	check, err := readCheck(c, serviceCheckFlags)
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	return &api.AgentServiceRegistration{
		ID:      c.String("id"),
		Name:    c.String("name"),
		Port:    c.Int("port"),
		Address: c.String("address"),
		Tags:    c.StringSlice("tag"),
		Meta:    meta,
		Check:   check,
	}, nil
}

// parseMeta turns K=V pairs into a map. The value may be empty or hold
// '='; the key may not be empty nor given twice.
func parseMeta(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	meta := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("--meta %q: want KEY=VALUE", p)
		case k == "":
			return nil, fmt.Errorf("--meta %q: empty key", p)
		}
		if _, dup := meta[k]; dup {
			return nil, fmt.Errorf("--meta %q: key %q given twice", p, k)
		}
		meta[k] = v
	}
	return meta, nil
}

func (s *shell) deregisterCommand() *cli.Command {
	return &cli.Command{
		Name:      "deregister",
		Usage:     "remove a service instance from the agent",
		UsageText: "shoal deregister ID",
		Flags:     []cli.Flag{httpAddrFlag(false)},
		Action: func(c *cli.Context) error {
			switch c.NArg() {
			case 0:
				return errors.New("deregister: missing service ID (shoal deregister ID)")
			case 1:
			default:
				return fmt.Errorf("deregister: unexpected argument %q (one service ID)", c.Args().Get(1))
			}
			id := c.Args().First()
			if err := client(c).Deregister(c.Context, id); err != nil {
				return fmt.Errorf("deregister %s: %w", id, err)
			}
			fmt.Fprintf(s.stdout, "Deregistered service %q.\n", id)
			return nil
		},
	}
}

// keyBytes is the size of the keys keygen makes: AES-256.
const keyBytes = 32

func (s *shell) keygenCommand() *cli.Command {
	return &cli.Command{
		Name:      "keygen",
		Usage:     "print a new random gossip encryption key for --encrypt",
		UsageText: "shoal keygen",
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			key, err := newKey()
			if err != nil {
				return err
			}
			fmt.Fprintln(s.stdout, key)
			return nil
		},
	}
}

// newKey returns a base64 key of keyBytes random bytes.
func newKey() (string, error) {
	k := make([]byte, keyBytes)
	if _, err := rand.Read(k); err != nil {
		return "", fmt.Errorf("keygen: read random bytes: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

func (s *shell) versionCommand() *cli.Command {
	return &cli.Command{
		Name:      "version",
		Usage:     "print Shoal's version",
		UsageText: "shoal version",
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			fmt.Fprintf(s.stdout, "shoal %s (%s %s/%s)\n", agent.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print JSON for scripts"}
}

// converged prints every member's announced catalog digest beside this
// agent's, and fails unless all agree.
func (s *shell) converged(c *cli.Context) error {
	v, _, err := client(c).Convergence(c.Context, nil)
	if err != nil {
		return fmt.Errorf("members: %w", err)
	}
	if c.Bool("json") {
		if err := writeJSON(s.stdout, v); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(s.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "Node\tStatus\tDigest\tAgrees\n")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Node, "alive", v.Digest, "(this agent)")
		for _, m := range v.Members {
			d := m.Digest
			if d == "" {
				d = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%t\n", m.Node, m.Status, d, m.Agrees)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if !v.Converged {
		disagree := 0
		for _, m := range v.Members {
			if !m.Agrees {
				disagree++
			}
		}
		return fmt.Errorf("members: not converged: %d of %d other members hold another catalog (or have not said yet)", disagree, len(v.Members))
	}
	return nil
}

// tlsHTTPClient is an HTTP client that trusts the CA in caFile (the
// system's CAs if empty) and presents the client certificate, if given.
// A file that does not load fails every request with one line naming it.
func tlsHTTPClient(caFile, certFile, keyFile string) *http.Client {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	fail := func(err error) *http.Client { return &http.Client{Transport: failingTransport{err}} }
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return fail(fmt.Errorf("ca-file: %w", err))
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return fail(fmt.Errorf("ca-file: %s holds no PEM certificate", caFile))
		}
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fail(fmt.Errorf("client-cert, client-key: %w", err))
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr}
}

type failingTransport struct{ err error }

func (f failingTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, f.err }
