package localapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// maxBodySize bounds a request body. A valid registration is far smaller:
// one instance must fit in catalog.MaxEncodedSize bytes.
const maxBodySize = 64 << 10

// readBody reads a request body of at most maxBodySize bytes.
// bodyTimeout is how long a request body may take to arrive.
const bodyTimeout = 30 * time.Second

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > maxBodySize {
		return nil, errorf(http.StatusRequestEntityTooLarge, "body: %d bytes is over the limit of %d", r.ContentLength, maxBodySize)
	}
	// A body trickled in a byte at a time must not hold the handler: the
	// whole of it has bodyTimeout to arrive (the headers had their own).
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyTimeout))
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodySize))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errorf(http.StatusRequestEntityTooLarge, "body: over the limit of %d bytes", maxBodySize)
		}
		return nil, errorf(http.StatusBadRequest, "body: %v", err)
	}
	return b, nil
}

// decodeRegistration turns the body of PUT /v1/agent/service/register into
// a service and the checks registered with it: Check, then Checks, the
// null ones left out. Keys are decoded as decodeStrict decodes them. The
// service and checks are not validated here: the Backend does that.
func decodeRegistration(body []byte) (catalog.Service, []api.AgentServiceCheck, error) {
	var reg api.AgentServiceRegistration
	if err := decodeStrict(body, &reg, "service registration", serviceRegistrationHint); err != nil {
		return catalog.Service{}, nil, err
	}
	if reg.Kind != "" {
		return catalog.Service{}, nil, errorf(http.StatusBadRequest, "Kind: %q not supported; only typical services (no Kind) can be registered", reg.Kind)
	}
	// Consul's client always sends Check and Checks, null when unset.
	var checks []api.AgentServiceCheck
	if reg.Check != nil {
		checks = append(checks, *reg.Check)
	}
	for _, c := range reg.Checks {
		if c != nil {
			checks = append(checks, *c)
		}
	}
	// TaggedAddresses and EnableTagOverride are accepted and ignored: the
	// catalog has no place for them yet, and refusing them would turn a
	// registration that works with Consul into one that fails.
	s := catalog.Service{
		ID:      reg.ID,
		Name:    reg.Name,
		Tags:    reg.Tags,
		Address: reg.Address,
		Port:    reg.Port,
		Meta:    reg.Meta,
	}
	if reg.Weights != nil {
		s.Weights = catalog.Weights{Passing: reg.Weights.Passing, Warning: reg.Weights.Warning}
	}
	return s, checks, nil
}

// Where decodeStrict's errors send a client that used an unknown key.
const (
	serviceRegistrationHint = "see Consul's AgentServiceRegistration for the fields accepted"
	checkRegistrationHint   = "see Consul's AgentCheckRegistration for the fields accepted"
)

// decodeStrict decodes body, one JSON object and nothing after it, into
// v, a pointer to a struct. Keys match case-insensitively, as
// encoding/json (and so Consul) matches them; a key the struct lacks is
// refused, naming it, so that a misspelt field is not silently dropped.
// what names the body in errors, hint tells where the fields are listed.
func decodeStrict(body []byte, v any, what, hint string) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errorf(http.StatusBadRequest, "body: empty; expected a JSON %s", what)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(body, v, err, hint)
	}
	if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
		return errorf(http.StatusBadRequest, "body: unexpected data after the JSON object at byte %d", dec.InputOffset())
	}
	return nil
}

// decodeError turns an encoding/json error decoding body into v into a
// 400 naming the field; hint follows the name of an unknown one.
func decodeError(body []byte, v any, err error, hint string) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return errorf(http.StatusBadRequest, "body: invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return errorf(http.StatusBadRequest, "body: expected a JSON object, got %s", typ.Value)
		}
		return errorf(http.StatusBadRequest, "%s: expected %s, got %s", jsonPath(typ.Field, v), jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errorf(http.StatusBadRequest, "body: truncated JSON")
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		if n, err := strconv.Unquote(name); err == nil {
			name = n
		}
		return errorf(http.StatusBadRequest, "%s: unknown field; %s", unknownFieldPath(body, name), hint)
	}
	return errorf(http.StatusBadRequest, "body: %s", msg)
}

// jsonPath drops from the field path of a decoding error into v the name
// of the embedded struct it went through, which encoding/json includes
// but the JSON lacks: AgentCheckRegistration's "AgentServiceCheck.TTL" is
// "TTL" to the client.
func jsonPath(field string, v any) string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return field
	}
	for i := range t.NumField() {
		if f := t.Field(i); f.Anonymous {
			if rest, ok := strings.CutPrefix(field, f.Name+"."); ok {
				return rest
			}
		}
	}
	return field
}

// jsonKind names a Go kind the way the JSON it decodes from is called.
func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"), strings.HasPrefix(goKind, "float"):
		return "a number"
	case goKind == "string":
		return "a string"
	case goKind == "bool":
		return "true or false"
	case goKind == "slice":
		return "an array"
	case goKind == "map", goKind == "struct", goKind == "ptr":
		return "an object"
	}
	return goKind
}

// unknownFieldPath finds where an unknown field sits, since encoding/json
// names only the key: "Check.Foo" reads better than "Foo". It looks in
// the objects of the registration that hold other objects and falls back
// to the bare name.
func unknownFieldPath(body []byte, name string) string {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return name
	}
	if _, ok := top[name]; ok {
		return name
	}
	strict := func(raw json.RawMessage, v any) bool {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		return dec.Decode(v) != nil
	}
	for k, raw := range top {
		switch {
		case strings.EqualFold(k, "Check"):
			if strict(raw, &api.AgentServiceCheck{}) {
				return k + "." + name
			}
		case strings.EqualFold(k, "Weights"):
			if strict(raw, &api.AgentWeights{}) {
				return k + "." + name
			}
		case strings.EqualFold(k, "Checks"):
			var list []json.RawMessage
			if json.Unmarshal(raw, &list) == nil {
				for i, c := range list {
					if strict(c, &api.AgentServiceCheck{}) {
						return k + "[" + strconv.Itoa(i) + "]." + name
					}
				}
			}
		case strings.EqualFold(k, "TaggedAddresses"):
			var m map[string]json.RawMessage
			if json.Unmarshal(raw, &m) == nil {
				for tag, a := range m {
					if strict(a, &api.ServiceAddress{}) {
						return k + "[" + tag + "]." + name
					}
				}
			}
		}
	}
	return name
}
