package localapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// maxBodySize bounds a request body. A valid registration is far smaller:
// one instance must fit in catalog.MaxEncodedSize bytes.
const maxBodySize = 64 << 10

// readBody reads a request body of at most maxBodySize bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > maxBodySize {
		return nil, errorf(http.StatusRequestEntityTooLarge, "body: %d bytes is over the limit of %d", r.ContentLength, maxBodySize)
	}
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
// a service. Keys match case-insensitively, as encoding/json (and so
// Consul) matches them; a key that AgentServiceRegistration lacks is
// refused, naming it, so that a misspelt field is not silently dropped.
// The service is not validated here: the catalog does that.
func decodeRegistration(body []byte) (catalog.Service, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return catalog.Service{}, errorf(http.StatusBadRequest, "body: empty; expected a JSON service registration")
	}
	var reg api.AgentServiceRegistration
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&reg); err != nil {
		return catalog.Service{}, decodeError(body, err)
	}
	if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
		return catalog.Service{}, errorf(http.StatusBadRequest, "body: unexpected data after the JSON object at byte %d", dec.InputOffset())
	}
	if reg.Kind != "" {
		return catalog.Service{}, errorf(http.StatusBadRequest, "Kind: %q not supported; only typical services (no Kind) can be registered", reg.Kind)
	}
	// Check and Checks are accepted and ignored until Shoal runs health
	// checks (a later issue): until then an instance is passing while its
	// node is alive. Consul's client always sends both, null when unset.
	//
	// TaggedAddresses and EnableTagOverride are accepted and ignored too:
	// the catalog has no place for them yet, and refusing them would turn
	// a registration that works with Consul into one that fails.
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
	return s, nil
}

// decodeError turns an encoding/json error into a 400 naming the field.
func decodeError(body []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return errorf(http.StatusBadRequest, "body: invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return errorf(http.StatusBadRequest, "body: expected a JSON object, got %s", typ.Value)
		}
		return errorf(http.StatusBadRequest, "%s: expected %s, got %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errorf(http.StatusBadRequest, "body: truncated JSON")
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		if n, err := strconv.Unquote(name); err == nil {
			name = n
		}
		return errorf(http.StatusBadRequest, "%s: unknown field; see Consul's AgentServiceRegistration for the fields accepted", unknownFieldPath(body, name))
	}
	return errorf(http.StatusBadRequest, "body: %s", msg)
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
