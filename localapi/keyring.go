package localapi

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/shoal-sd/shoal/api"
)

// The gossip keyring, as Consul's /v1/operator/keyring: GET lists the
// keys of every member, POST installs a key everywhere, PUT makes it the
// primary, DELETE removes it. Writes answer 200 with an empty body when
// every node took the operation, and 500 listing each node's error
// otherwise (as Consul); a list answers 200 with the failures in
// Messages, so that a partial view is still shown.

// keyringRequest is the body of a keyring write.
type keyringRequest struct {
	Key string
}

// decodeKeyringRequest reads the body of a keyring write: {"Key": base64
// of 16, 24 or 32 bytes}.
func decodeKeyringRequest(body []byte) ([]byte, error) {
	var req keyringRequest
	if err := decodeStrict(body, &req, "keyring request", `the body is {"Key": "<base64 key>"}`); err != nil {
		return nil, err
	}
	if req.Key == "" {
		return nil, errorf(http.StatusBadRequest, "Key: missing; give the base64 key (shoal keygen makes one)")
	}
	key, err := base64.StdEncoding.DecodeString(req.Key)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "Key: not base64: %v", err)
	}
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, errorf(http.StatusBadRequest, "Key: %d bytes; a gossip key is 16, 24 or 32 bytes", len(key))
	}
	return key, nil
}

// relayFactor checks Consul's ?relay-factor (0 to 5). Shoal's answers
// come back directly, so it changes nothing.
func relayFactor(q *query) error {
	v := q.values.Get("relay-factor")
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 5 {
		return errorf(http.StatusBadRequest, "relay-factor: %q is not a number from 0 to 5", v)
	}
	return nil
}

// GET /v1/operator/keyring
func (s *server) keyringList(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	if err := relayFactor(q); err != nil {
		return err
	}
	local, err := q.flag("local-only")
	if err != nil {
		return err
	}
	res, err := s.b.Keyring(r.Context(), "list", nil, local)
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	return s.writeJSON(w, q, 0, []api.KeyringResponse{res})
}

// POST, PUT, DELETE /v1/operator/keyring
func (s *server) keyringInstall(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	return s.keyringWrite(w, r, q, "install")
}

func (s *server) keyringUse(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	return s.keyringWrite(w, r, q, "use")
}

func (s *server) keyringRemove(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	return s.keyringWrite(w, r, q, "remove")
}

func (s *server) keyringWrite(w http.ResponseWriter, r *http.Request, q *query, op string) error {
	if err := relayFactor(q); err != nil {
		return err
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	key, err := decodeKeyringRequest(body)
	if err != nil {
		return err
	}
	res, err := s.b.Keyring(r.Context(), op, key, false)
	if err != nil {
		return fmt.Errorf("keyring %s: %w", op, err)
	}
	if len(res.Messages) > 0 {
		return fmt.Errorf("keyring %s: %s", op, keyringFailures(res))
	}
	s.log.Info("gossip keyring changed on every node", "op", op, "nodes", res.NumNodes)
	writeOK(w)
	return nil
}

// keyringFailures says which nodes failed an operation and why, by node,
// sorted by name.
func keyringFailures(res api.KeyringResponse) string {
	nodes := make([]string, 0, len(res.Messages))
	for n := range res.Messages {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d nodes reported failure", len(nodes), res.NumNodes)
	for _, n := range nodes {
		fmt.Fprintf(&b, "; %s: %s", n, res.Messages[n])
	}
	return b.String()
}
