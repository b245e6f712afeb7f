package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/gossip"
)

// keyringFile keeps the gossip keyring in the data directory: a JSON list
// of base64 keys, the primary first (Consul's local.keyring format). Once
// it exists it is the keyring: the config's encrypt key only seeds it, so
// that a restart after a rotation does not bring the old key back.
const keyringFile = "local.keyring"

// setupKeyring decides the gossip keys at start, primary first: the
// keyring file if there is one, else the encrypt key (then saved as the
// keyring file). None: gossip is not encrypted.
func (a *Agent) setupKeyring() ([][]byte, error) {
	var configured []byte
	if a.cfg.EncryptKey != "" {
		k, err := DecodeKey(a.cfg.EncryptKey)
		if err != nil {
			return nil, err
		}
		configured = k
	}
	if a.cfg.DataDir == "" {
		if configured == nil {
			return nil, nil
		}
		return [][]byte{configured}, nil
	}
	path := filepath.Join(a.cfg.DataDir, keyringFile)
	keys, err := readKeyring(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if configured == nil {
			return nil, nil
		}
		keys = [][]byte{configured}
		if err := a.saveKeyring(keys); err != nil {
			return nil, err
		}
		return keys, nil
	case err != nil:
		return nil, err
	}
	if configured != nil && !slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, configured) }) {
		a.log.Warn("the encrypt key is not in the keyring kept in the data dir (rotated away?); using the keyring", "file", path, "keys", len(keys))
	}
	return keys, nil
}

// readKeyring reads a keyring file; an empty or invalid one is an error
// that names the file.
func readKeyring(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	var encoded []string
	if err := json.Unmarshal(b, &encoded); err != nil {
		return nil, fmt.Errorf("keyring %s: not a JSON list of base64 keys: %w", path, err)
	}
	if len(encoded) == 0 {
		return nil, fmt.Errorf("keyring %s: no keys; remove the file to start from the encrypt key", path)
	}
	keys := make([][]byte, 0, len(encoded))
	for i, s := range encoded {
		k, err := DecodeKey(s)
		if err != nil {
			return nil, fmt.Errorf("keyring %s: key %d: %w", path, i, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// saveKeyring writes the keyring file (primary first), readable by the
// agent's user only.
func (a *Agent) saveKeyring(keys [][]byte) error {
	if a.cfg.DataDir == "" {
		return nil
	}
	encoded := make([]string, len(keys))
	for i, k := range keys {
		encoded[i] = base64.StdEncoding.EncodeToString(k)
	}
	b, err := json.MarshalIndent(encoded, "", "  ")
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	a.persistMu.Lock()
	defer a.persistMu.Unlock()
	if err := os.MkdirAll(a.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	return writeFileAtomic(filepath.Join(a.cfg.DataDir, keyringFile), append(b, '\n'))
}

// Keyring runs a gossip keyring operation on every member (see
// localapi.Backend).
func (a *Agent) Keyring(ctx context.Context, op string, key []byte, localOnly bool) (api.KeyringResponse, error) {
	var kop gossip.KeyOp
	switch op {
	case "list":
		kop = gossip.KeyList
	case "install":
		kop = gossip.KeyInstall
	case "use":
		kop = gossip.KeyUse
	case "remove":
		kop = gossip.KeyRemove
	default:
		return api.KeyringResponse{}, fmt.Errorf("unknown keyring operation %q", op)
	}
	var res gossip.KeyringResult
	var err error
	if localOnly && kop == gossip.KeyList {
		res, err = a.g.LocalKeyring()
	} else {
		res, err = a.g.Keyring(ctx, kop, key)
	}
	if err != nil {
		return api.KeyringResponse{}, err
	}
	out := api.KeyringResponse{Datacenter: a.cfg.Datacenter, Keys: res.Keys, PrimaryKeys: res.PrimaryKeys, NumNodes: res.NumNodes}
	if len(res.Messages) > 0 {
		out.Messages = res.Messages
	}
	return out, nil
}
