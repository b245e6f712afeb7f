package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

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
// Node Address Port ID Tags Status. The address is the instance's, or its
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
		r.status = api.AggregatedStatus(e.Checks)
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
