package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/shoal-sd/shoal/api"
)

// writeTable writes rows under header as columns aligned by two spaces,
// without trailing blanks.
func writeTable(w io.Writer, header []string, rows [][]string) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	io.WriteString(tw, strings.Join(header, "\t")+"\n")
	for _, r := range rows {
		io.WriteString(tw, strings.Join(r, "\t")+"\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var out strings.Builder
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line == "" {
			continue
		}
		out.WriteString(strings.TrimRight(line, " \n") + "\n")
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// membersTable prints members sorted by name: Node Address Status DC.
func membersTable(w io.Writer, members []*api.AgentMember) error {
	members = append([]*api.AgentMember(nil), members...)
	sort.SliceStable(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	rows := make([][]string, 0, len(members))
	for _, m := range members {
		rows = append(rows, []string{
			m.Name,
			net.JoinHostPort(m.Addr, strconv.Itoa(int(m.Port))),
			api.MemberStatusString(m.Status),
			m.Tags["dc"],
		})
	}
	return writeTable(w, []string{"Node", "Address", "Status", "DC"}, rows)
}

// servicesTable prints service names, sorted, with their tags: Name Tags.
func servicesTable(w io.Writer, services map[string][]string) error {
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	sort.Strings(names)
	rows := make([][]string, 0, len(names))
	for _, n := range names {
		rows = append(rows, []string{n, strings.Join(services[n], ",")})
	}
	return writeTable(w, []string{"Name", "Tags"}, rows)
}

// instancesTable prints a service's instances sorted by node and ID:
// Node Address Port ID Tags Status, the status marked "(damped)" when flap
// damping holds any of its checks. The address is the instance's, or its
// node's when the instance has none.
func instancesTable(w io.Writer, entries []*api.ServiceEntry) error {
	type row struct{ node, addr, port, id, tags, status string }
	rows := make([]row, 0, len(entries))
	for _, e := range entries {
		var r row
		if e.Node != nil {
			r.node, r.addr = e.Node.Node, e.Node.Address
		}
		if s := e.Service; s != nil {
			if s.Address != "" {
				r.addr = s.Address
			}
			r.port, r.id, r.tags = strconv.Itoa(s.Port), s.ID, strings.Join(s.Tags, ",")
		}
		damped := slices.ContainsFunc(e.Checks, func(c *api.HealthCheck) bool { return c.Damped })
		r.status = checkStatus(api.AggregatedStatus(e.Checks), damped)
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].node != rows[j].node {
			return rows[i].node < rows[j].node
		}
		return rows[i].id < rows[j].id
	})
	cells := make([][]string, 0, len(rows))
	for _, r := range rows {
		cells = append(cells, []string{r.node, r.addr, r.port, r.id, r.tags, r.status})
	}
	return writeTable(w, []string{"Node", "Address", "Port", "ID", "Tags", "Status"}, cells)
}

// checkStatus shows a status, marked when flap damping holds it.
func checkStatus(status string, damped bool) string {
	if damped {
		return status + " (damped)"
	}
	return status
}

// maxOutputHead is how much of a check's output a table shows.
const maxOutputHead = 60

// outputHead is the first line of a check's output, cut to fit a table.
func outputHead(out string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	line = strings.TrimSpace(line)
	if len(line) <= maxOutputHead {
		return line
	}
	cut := maxOutputHead
	for cut > 0 && !utf8.RuneStart(line[cut]) {
		cut--
	}
	return line[:cut] + "..."
}

// checksTable prints the agent's checks sorted by ID:
// ID Name Service Type Status Output.
func checksTable(w io.Writer, checks map[string]*api.AgentCheck) error {
	rows := make([][]string, 0, len(checks))
	for _, id := range slices.Sorted(maps.Keys(checks)) {
		c := checks[id]
		rows = append(rows, []string{id, c.Name, c.ServiceID, c.Type, checkStatus(c.Status, c.Damped), outputHead(c.Output)})
	}
	return writeTable(w, []string{"ID", "Name", "Service", "Type", "Status", "Output"}, rows)
}

// maintenanceList prints what is in maintenance mode as `consul maint`
// does, the node first, then the services by ID; nothing when nothing is.
func maintenanceList(w io.Writer, checks map[string]*api.AgentCheck) error {
	var b strings.Builder
	if c := checks[api.NodeMaint]; c != nil {
		fmt.Fprintf(&b, "Node:\n  Name:   %s\n  Reason: %s\n\n", c.Node, c.Notes)
	}
	for _, id := range slices.Sorted(maps.Keys(checks)) {
		if service, ok := strings.CutPrefix(id, api.ServiceMaintPrefix); ok {
			fmt.Fprintf(&b, "Service:\n  ID:     %s\n  Reason: %s\n\n", service, checks[id].Notes)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeJSON prints v as indented JSON for scripts.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// orEmpty makes a nil list print as [] rather than null.
func orEmpty[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}

// orEmptyMap makes a nil map print as {} rather than null.
func orEmptyMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return m
}
