package localapi

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/go-bexpr"
	"github.com/hashicorp/go-bexpr/grammar"

	"github.com/shoal-sd/shoal/catalog"
)

// The query parameters that narrow a read, as Consul has them:
//
//   - node-meta=key:value, repeatable: only what runs on nodes whose
//     metadata has every pair ("key" alone is key:"", as in Consul);
//   - filter=EXPR, a go-bexpr expression evaluated over each element of the
//     answer in Consul's shape, with Consul's selector names (the api types
//     are those shapes: Node.Meta.env, Service.Tags, ServiceMeta.version,
//     Checks.Status, ...).
//
// A route that does not apply one refuses it: an unfiltered answer must
// not pass for a filtered one. Filters are compiled before the catalog is
// read (a bad one changes nothing and waits for nothing) and evaluated on
// what the handler copied out, never under the agent's lock.

// narrowingParams says which of the parameters a route applies.
type narrowingParams struct{ filter, nodeMeta bool }

// narrowingRoutes lists the routes that apply filter or node-meta, by
// route path, as Consul's do. (The Connect routes answer [] whatever
// they are given, but check both.)
var narrowingRoutes = map[string]narrowingParams{
	"catalog/services":       {filter: true, nodeMeta: true},
	"catalog/node/":          {filter: true},
	"catalog/node-services/": {filter: true},
	"catalog/connect/":       {filter: true, nodeMeta: true},
	"health/connect/":        {filter: true, nodeMeta: true},
	"health/ingress/":        {filter: true, nodeMeta: true},
	"agent/members":          {filter: true},
	"agent/services":         {filter: true},
	"agent/checks":           {filter: true},
	"catalog/nodes":          {filter: true, nodeMeta: true},
	"catalog/service/":       {filter: true, nodeMeta: true},
	"health/service/":        {filter: true, nodeMeta: true},
	"health/checks/":         {filter: true, nodeMeta: true},
	"health/node/":           {filter: true},
	"health/state/":          {filter: true, nodeMeta: true},
}

// refuseNarrowing refuses filter and node-meta on a route that does not
// apply them. Empty values count as absent, as in Consul.
func refuseNarrowing(rt *route, q *query) error {
	if q.values == nil {
		return nil
	}
	p := narrowingRoutes[rt.path]
	if !p.filter && q.values.Get("filter") != "" {
		return errorf(http.StatusBadRequest, "filter: not supported on %s %s%s", rt.method, apiPrefix, rt.path)
	}
	if !p.nodeMeta && slices.ContainsFunc(q.values["node-meta"], func(s string) bool { return s != "" }) {
		return errorf(http.StatusBadRequest, "node-meta: not supported on %s %s%s", rt.method, apiPrefix, rt.path)
	}
	return nil
}

// metaFilter holds the key, value pairs of ?node-meta; all must match.
// nil matches everything.
type metaFilter []string

// nodeMeta reads ?node-meta; nil if there is none.
func (q *query) nodeMeta() (metaFilter, error) {
	vs := q.values["node-meta"]
	if len(vs) == 0 {
		return nil, nil
	}
	if len(vs) > catalog.MaxNodeMetaPairs {
		// Matching may run under the agent's read lock; keep it short.
		return nil, errorf(http.StatusBadRequest, "node-meta: %d pairs given; a node has at most %d", len(vs), catalog.MaxNodeMetaPairs)
	}
	var m metaFilter
	for _, v := range vs {
		if v == "" {
			continue // absent, as an empty filter is
		}
		key, val, _ := strings.Cut(v, ":")
		if key == "" {
			return nil, errorf(http.StatusBadRequest, "node-meta: %q has no key; use node-meta=key:value", v)
		}
		m = append(m, key, val)
	}
	return m, nil
}

// match reports whether meta has every pair.
func (m metaFilter) match(meta map[string]string) bool {
	for i := 0; i < len(m); i += 2 {
		if v, ok := meta[m[i]]; !ok || v != m[i+1] {
			return false
		}
	}
	return true
}

// matchPairs is match for metadata held as key, value pairs.
func (m metaFilter) matchPairs(kv []string) bool {
next:
	for i := 0; i < len(m); i += 2 {
		for j := 0; j+1 < len(kv); j += 2 {
			if kv[j] == m[i] {
				if kv[j+1] == m[i+1] {
					continue next
				}
				return false
			}
		}
		return false
	}
	return true
}

// maxFilterExpressions bounds the parse of a filter. go-bexpr's parser
// backtracks, and nested parentheses cost it exponentially: this is its
// own default, which holds the worst filter to about 0.2 s of CPU (five
// levels of parentheses still parse).
const maxFilterExpressions = 2_000_000

// exprFilter is a compiled ?filter. It is not safe for concurrent use
// (go-bexpr caches compiled regular expressions in it): one per request.
type exprFilter struct {
	eval *bexpr.Evaluator
}

// filter compiles ?filter for the elements of an answer, whose shape is
// sample's type (a pointer to a value built by sampleOf); nil if there
// is none.
func (q *query) filter(sample any) (*exprFilter, error) {
	src := q.values.Get("filter")
	if src == "" {
		return nil, nil
	}
	return compileFilter(src, sample)
}

// narrowing reads both parameters; see nodeMeta and filter.
func (q *query) narrowing(sample any) (metaFilter, *exprFilter, error) {
	if q.values == nil {
		return nil, nil, nil
	}
	nm, err := q.nodeMeta()
	if err != nil {
		return nil, nil, err
	}
	f, err := q.filter(sample)
	return nm, f, err
}

// compileFilter parses src, checks its selectors against sample's type
// and evaluates it once on sample, so that a bad filter is refused with
// go-bexpr's reason whether or not anything would be filtered.
//
// Consul documents selectors that reach through a list of objects, such
// as Checks.Status on an instance: true if any check's Status matches,
// as the go-bexpr Consul uses evaluates them. Later go-bexpr versions
// want "any Checks as c { c.Status == passing }" instead; such selectors
// are rewritten into that form, so both are understood.
func compileFilter(src string, sample any) (*exprFilter, error) {
	ast, err := grammar.Parse("", []byte(src), grammar.MaxExpressions(maxFilterExpressions))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "filter: %v", err)
	}
	c := filterChecker{root: reflect.TypeOf(sample)}
	e, err := c.expr(ast.(grammar.Expression))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "filter: %v", err)
	}
	if c.rewrote {
		src = printFilter(e)
	}
	eval, err := bexpr.CreateEvaluator(src, bexpr.WithMaxExpressions(maxFilterExpressions))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "filter: %v", err)
	}
	f := &exprFilter{eval: eval}
	if _, err := f.match(sample); err != nil {
		return nil, err
	}
	return f, nil
}

// match evaluates the filter on datum, a pointer to a value of the
// sample's type. A filter that cannot be evaluated on it (a value of the
// wrong type for its field) is the request's fault.
func (f *exprFilter) match(datum any) (bool, error) {
	ok, err := f.eval.Evaluate(datum)
	if err != nil {
		return false, errorf(http.StatusBadRequest, "filter: %v", err)
	}
	return ok, nil
}

// sampleOf returns a pointer to a T whose pointers point to zero values
// and whose lists of objects hold one, so that evaluating a filter on it
// reaches every field.
func sampleOf[T any]() *T {
	v := new(T)
	fillSample(reflect.ValueOf(v).Elem(), 0)
	return v
}

func fillSample(v reflect.Value, depth int) {
	if depth > 8 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillSample(v.Elem(), depth+1)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillSample(v.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		if e := v.Type().Elem(); derefType(e).Kind() == reflect.Struct {
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
			fillSample(v.Index(0), depth+1)
		}
	}
}

func derefType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// filterChecker walks a parsed filter: it checks every selector against
// the type the filter is evaluated on, and rewrites selectors that reach
// through a list of objects (see compileFilter).
type filterChecker struct {
	root    reflect.Type
	scope   []binding // the names collection expressions bind, innermost last
	rewrote bool
}

// binding is a name an any/all expression binds, and the type of what it
// stands for. shown, for a name the rewrite binds, is the path of the
// list it stands for an element of, for errors.
type binding struct {
	name  string
	typ   reflect.Type
	shown []string
}

// display is a selector's path as the filter wrote it: a name the
// rewrite bound is replaced by the path of its list.
func (c *filterChecker) display(path []string) string {
	return strings.Join(c.displayPath(path), ".")
}

func (c *filterChecker) displayPath(path []string) []string {
	if len(path) > 0 {
		if b := c.lookup(path[0]); b != nil && b.shown != nil {
			return append(slices.Clip(b.shown), path[1:]...)
		}
	}
	return slices.Clone(path)
}

// lookup finds the innermost binding of name; nil if there is none.
func (c *filterChecker) lookup(name string) *binding {
	for i := len(c.scope) - 1; i >= 0; i-- {
		if c.scope[i].name == name {
			return &c.scope[i]
		}
	}
	return nil
}

func (c *filterChecker) expr(e grammar.Expression) (grammar.Expression, error) {
	var err error
	switch e := e.(type) {
	case *grammar.BinaryExpression:
		if e.Left, err = c.expr(e.Left); err != nil {
			return nil, err
		}
		e.Right, err = c.expr(e.Right)
		return e, err
	case *grammar.UnaryExpression:
		e.Operand, err = c.expr(e.Operand)
		return e, err
	case *grammar.MatchExpression:
		return c.match(e)
	case *grammar.CollectionExpression:
		return c.collection(e)
	}
	return nil, fmt.Errorf("unexpected expression %T", e)
}

// match checks a match expression's selector. One that reaches through a
// list of objects (Checks.Status) becomes "any Checks as x { x.Status … }",
// the rest of its path checked against the list's elements.
func (c *filterChecker) match(e *grammar.MatchExpression) (grammar.Expression, error) {
	elem, split, err := c.resolve(e.Selector)
	if err != nil || split < 0 {
		return e, err
	}
	path := e.Selector.Path
	name := fmt.Sprintf("shoalElem%d", len(c.scope))
	inner := &grammar.MatchExpression{
		Selector: grammar.Selector{Type: grammar.SelectorTypeBexpr, Path: append([]string{name}, path[split:]...)},
		Operator: e.Operator,
		Value:    e.Value,
	}
	c.scope = append(c.scope, binding{name, elem, c.displayPath(path[:split])})
	in, err := c.match(inner)
	c.scope = c.scope[:len(c.scope)-1]
	if err != nil {
		return nil, err
	}
	c.rewrote = true
	return &grammar.CollectionExpression{
		Op:          grammar.CollectionOpAny,
		Selector:    grammar.Selector{Type: e.Selector.Type, Path: path[:split]},
		NameBinding: grammar.CollectionNameBinding{Mode: grammar.CollectionBindDefault, Default: name},
		Inner:       in,
	}, nil
}

// collection checks an any/all expression: its selector must name a list
// or a map, and its inner expression sees the names it binds.
func (c *filterChecker) collection(e *grammar.CollectionExpression) (grammar.Expression, error) {
	t, split, err := c.resolve(e.Selector)
	if err != nil {
		return nil, err
	}
	if split >= 0 {
		return nil, fmt.Errorf("selector %q reaches into every element of %q; bind them with another any or all",
			c.display(e.Selector.Path), c.display(e.Selector.Path[:split]))
	}
	var key, elem reflect.Type
	switch t = derefType(t); t.Kind() {
	case reflect.Slice, reflect.Array:
		key, elem = reflect.TypeFor[int](), t.Elem()
	case reflect.Map:
		key, elem = t.Key(), t.Elem()
	case reflect.Interface:
		key, elem = t, t
	default:
		return nil, fmt.Errorf("selector %q is not a list or a map", c.display(e.Selector.Path))
	}
	n := len(c.scope)
	switch b := e.NameBinding; b.Mode {
	case grammar.CollectionBindDefault:
		if t.Kind() == reflect.Map {
			c.scope = append(c.scope, binding{name: b.Default, typ: key})
		} else {
			c.scope = append(c.scope, binding{name: b.Default, typ: elem})
		}
	case grammar.CollectionBindIndex:
		c.scope = append(c.scope, binding{name: b.Index, typ: key})
	case grammar.CollectionBindValue:
		c.scope = append(c.scope, binding{name: b.Value, typ: elem})
	case grammar.CollectionBindIndexAndValue:
		c.scope = append(c.scope, binding{name: b.Index, typ: key}, binding{name: b.Value, typ: elem})
	}
	e.Inner, err = c.expr(e.Inner)
	c.scope = c.scope[:n]
	return e, err
}

// resolve follows a selector through the type it is evaluated on (or the
// type of the name it starts with). It returns the type selected, or,
// if the path goes on into the elements of a list of objects without an
// index, the elements' type and where in the path the rest starts.
func (c *filterChecker) resolve(sel grammar.Selector) (reflect.Type, int, error) {
	path := sel.Path
	if len(path) == 0 {
		return nil, -1, fmt.Errorf("empty selector")
	}
	t, start := c.root, 0
	if b := c.lookup(path[0]); b != nil {
		t, start = b.typ, 1
	}
	where := func(i int) string {
		if i == 0 {
			return "the top level"
		}
		return strconv.Quote(c.display(path[:i]))
	}
	shown := c.display(path)
	for i := start; i < len(path); i++ {
		switch t = derefType(t); t.Kind() {
		case reflect.Struct:
			f, ok := structField(t, path[i])
			if !ok {
				return nil, -1, fmt.Errorf("selector %q is not valid: %s has no field %q (it has %s)",
					shown, where(i), path[i], strings.Join(fieldNames(t), ", "))
			}
			t = f.Type
		case reflect.Map:
			t = t.Elem()
		case reflect.Slice, reflect.Array:
			switch {
			case isIndex(path[i]):
				t = t.Elem()
			case derefType(t.Elem()).Kind() == reflect.Struct:
				return t.Elem(), i, nil
			default:
				return nil, -1, fmt.Errorf("selector %q is not valid: %s is a list of values, without fields; test it with in, not in, is empty",
					shown, where(i))
			}
		case reflect.Interface:
			return t, -1, nil // anything may be below
		default:
			return nil, -1, fmt.Errorf("selector %q is not valid: %s is a %s, without fields", shown, where(i), t.Kind())
		}
	}
	return t, -1, nil
}

// structField finds a field as go-bexpr does: by its bexpr tag, else by
// its name; exported fields only.
func structField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.IsExported() && fieldName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func fieldName(f reflect.StructField) string {
	tag, _, _ := strings.Cut(f.Tag.Get("bexpr"), ",")
	if tag == "" {
		return f.Name
	}
	return tag
}

func fieldNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() && fieldName(f) != "-" {
			out = append(out, fieldName(f))
		}
	}
	return out
}

func isIndex(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isIdentifier reports whether s is a go-bexpr identifier, which a
// selector may give after a dot.
func isIdentifier(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '_' || c == '/')) {
			return false
		}
	}
	return s != ""
}

// Printing a parsed filter back to go-bexpr's syntax (after a rewrite):
// parentheses only where the grammar needs them, since every level of
// them costs go-bexpr's parser dearly.

// Precedence levels of the grammar: an "or" operand is an and-level
// expression, an "and" operand a not-level one.
const (
	levelOr = iota
	levelAnd
	levelNot
)

func printFilter(e grammar.Expression) string {
	var b strings.Builder
	printExpr(&b, e, levelOr)
	return b.String()
}

func printExpr(b *strings.Builder, e grammar.Expression, level int) {
	switch e := e.(type) {
	case *grammar.BinaryExpression:
		op, own, left := " or ", levelOr, levelAnd
		if e.Operator == grammar.BinaryOpAnd {
			op, own, left = " and ", levelAnd, levelNot
		}
		wrap := level > own
		if wrap {
			b.WriteByte('(')
		}
		printExpr(b, e.Left, left)
		b.WriteString(op)
		printExpr(b, e.Right, own)
		if wrap {
			b.WriteByte(')')
		}
	case *grammar.UnaryExpression:
		b.WriteString("not ")
		printExpr(b, e.Operand, levelNot)
	case *grammar.MatchExpression:
		printMatch(b, e)
	case *grammar.CollectionExpression:
		// The grammar takes any/all only where an or-expression may stand.
		wrap := level > levelOr
		if wrap {
			b.WriteByte('(')
		}
		if e.Op == grammar.CollectionOpAll {
			b.WriteString("all ")
		} else {
			b.WriteString("any ")
		}
		printSelector(b, e.Selector)
		b.WriteString(" as ")
		switch n := e.NameBinding; n.Mode {
		case grammar.CollectionBindIndex:
			b.WriteString(n.Index + ", _")
		case grammar.CollectionBindValue:
			b.WriteString("_, " + n.Value)
		case grammar.CollectionBindIndexAndValue:
			b.WriteString(n.Index + ", " + n.Value)
		default:
			b.WriteString(n.Default)
		}
		b.WriteString(" { ")
		printExpr(b, e.Inner, levelOr)
		b.WriteString(" }")
		if wrap {
			b.WriteByte(')')
		}
	}
}

var matchOps = map[grammar.MatchOperator]string{
	grammar.MatchEqual:       " == ",
	grammar.MatchNotEqual:    " != ",
	grammar.MatchIn:          " in ",
	grammar.MatchNotIn:       " not in ",
	grammar.MatchIsEmpty:     " is empty",
	grammar.MatchIsNotEmpty:  " is not empty",
	grammar.MatchMatches:     " matches ",
	grammar.MatchNotMatches:  " not matches ",
	grammar.MatchIsNil:       " is nil",
	grammar.MatchIsNotNil:    " is not nil",
	grammar.MatchContains:    " contains ",
	grammar.MatchNotContains: " not contains ",
}

func printMatch(b *strings.Builder, e *grammar.MatchExpression) {
	switch e.Operator {
	case grammar.MatchIn, grammar.MatchNotIn:
		printLiteral(b, e.Value.Raw)
		b.WriteString(matchOps[e.Operator])
		printSelector(b, e.Selector)
	case grammar.MatchIsEmpty, grammar.MatchIsNotEmpty, grammar.MatchIsNil, grammar.MatchIsNotNil:
		printSelector(b, e.Selector)
		b.WriteString(matchOps[e.Operator])
	default:
		printSelector(b, e.Selector)
		b.WriteString(matchOps[e.Operator])
		printLiteral(b, e.Value.Raw)
	}
}

func printSelector(b *strings.Builder, sel grammar.Selector) {
	if sel.Type == grammar.SelectorTypeJsonPointer {
		b.WriteByte('"')
		for _, p := range sel.Path {
			b.WriteByte('/')
			b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(p))
		}
		b.WriteByte('"')
		return
	}
	for i, p := range sel.Path {
		switch {
		case i == 0:
			b.WriteString(p) // an identifier: the grammar starts with one
		case isIdentifier(p) || isIndex(p):
			b.WriteString("." + p)
		default:
			b.WriteByte('[')
			printLiteral(b, p)
			b.WriteByte(']')
		}
	}
}

// printLiteral writes s as a go-bexpr string literal. A raw `…` literal
// holds anything but a backquote (and a carriage return, which unquoting
// drops); otherwise a "…" literal with every byte that is not printable
// ASCII, and the quote and backslash, written as \xNN: go-bexpr unquotes
// it as Go does, but ends it at the first '"', even escaped. A raw
// literal also never reads as a JSON-pointer selector, as "/a/b" does.
func printLiteral(b *strings.Builder, s string) {
	if !strings.ContainsAny(s, "`\r") && utf8.ValidString(s) {
		b.WriteByte('`')
		b.WriteString(s)
		b.WriteByte('`')
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || c == '"' || c == '\\' {
			fmt.Fprintf(b, `\x%02x`, c)
		} else {
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// narrowSlice drops, keeping the order, the elements of list that keep
// (if not nil) or f (if not nil) rejects.
func narrowSlice[T any](list []T, keep func(*T) bool, f *exprFilter) ([]T, error) {
	if keep == nil && f == nil {
		return list, nil
	}
	kept := list[:0]
	for i := range list {
		if keep != nil && !keep(&list[i]) {
			continue
		}
		if f != nil {
			ok, err := f.match(&list[i])
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		kept = append(kept, list[i])
	}
	clear(list[len(kept):])
	return kept, nil
}

// narrowMap deletes the values of m that f (if not nil) rejects.
func narrowMap[K comparable, V any](m map[K]V, f *exprFilter) error {
	if f == nil {
		return nil
	}
	for k, v := range m {
		ok, err := f.match(&v)
		if err != nil {
			return err
		}
		if !ok {
			delete(m, k)
		}
	}
	return nil
}
