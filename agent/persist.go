package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/shoal-sd/shoal/catalog"
)

// The data directory keeps what the agent must not lose across restarts:
// one file per service registered over the API (so a burst of
// registrations writes each service once, and a crash can only ever lose
// the write under way), and the peers it has known.
const (
	servicesDir = "services"
	peersFile   = "peers.json"
)

// persistedService is the file format of one service: versioned, so a
// later Shoal can read what an earlier one wrote.
type persistedService struct {
	Version int
	Service catalog.Service
}

// writeFileAtomic writes data to path so that a crash at any moment leaves
// either the old file or the new one, never a part: temp file, fsync,
// rename, fsync of the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("persist %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("persist %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("persist %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("persist %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("persist %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("persist: open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("persist: sync %s: %w", dir, err)
	}
	return nil
}

// serviceFile names a service's file by a hash of its ID: IDs may hold
// characters a file name cannot.
func (a *Agent) serviceFile(id string) string {
	h := sha256.Sum256([]byte(id))
	return filepath.Join(a.cfg.DataDir, servicesDir, hex.EncodeToString(h[:16])+".json")
}

// persistService brings the service's file in line with the catalog: it
// writes the service as registered now, or removes the file if the service
// is gone. It reads the current state itself (under persistMu), so calls
// racing for one ID still leave the newest state on disk.
func (a *Agent) persistService(id string) error {
	if a.cfg.DataDir == "" {
		return nil
	}
	a.persistMu.Lock()
	defer a.persistMu.Unlock()
	a.mu.RLock()
	s, ok := a.cat.LocalService(id)
	if ok {
		s = s.Clone()
	}
	a.mu.RUnlock()
	path := a.serviceFile(id)
	if !ok {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("persist: remove %s: %w", path, err)
		}
		return syncDir(filepath.Dir(path))
	}
	data, err := json.Marshal(persistedService{Version: 1, Service: s})
	if err != nil {
		return fmt.Errorf("persist service %q: %w", id, err)
	}
	return writeFileAtomic(path, data)
}

// restoreServices registers, in the catalog, every service found in the
// data directory. A file that cannot be read or decoded is reported, set
// aside (renamed *.corrupt-TIME) and skipped: it never stops the agent.
func (a *Agent) restoreServices() error {
	dir := filepath.Join(a.cfg.DataDir, servicesDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	restored := 0
	for _, de := range entries {
		name := de.Name()
		if de.IsDir() || !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			if strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-") {
				_ = os.Remove(filepath.Join(dir, name)) // a write a crash interrupted
			}
			continue
		}
		path := filepath.Join(dir, name)
		s, err := readService(path)
		if err == nil {
			a.mu.Lock()
			_, _, err = a.cat.Put(s, a.now())
			a.mu.Unlock()
		}
		if err != nil {
			aside := fmt.Sprintf("%s.corrupt-%d", path, a.now().Unix())
			a.log.Error("set aside an unreadable service file", "file", path, "moved_to", aside, "err", err)
			if rerr := os.Rename(path, aside); rerr != nil {
				a.log.Error("could not set the file aside", "file", path, "err", rerr)
			}
			continue
		}
		restored++
	}
	if restored > 0 {
		a.log.Info("restored services from the data dir", "services", restored)
	}
	return nil
}

func readService(path string) (catalog.Service, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return catalog.Service{}, err
	}
	var p persistedService
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return catalog.Service{}, fmt.Errorf("decode: %w", err)
	}
	if p.Version != 1 {
		return catalog.Service{}, fmt.Errorf("file format version %d; this agent reads 1", p.Version)
	}
	return p.Service, nil
}

// savePeers records the gossip addresses of every node the agent knows,
// failed ones included, so that a restart can find the cluster again.
func (a *Agent) savePeers() error {
	if a.cfg.DataDir == "" {
		return nil
	}
	a.mu.RLock()
	nodes := a.cat.Nodes()
	a.mu.RUnlock()
	var peers []string
	self := a.GossipAddr()
	for _, n := range nodes {
		addr := fmt.Sprintf("%s:%d", n.Address, n.Port)
		if n.Name != a.cfg.NodeName && n.Address != "" && addr != self {
			peers = append(peers, addr)
		}
	}
	sort.Strings(peers)
	a.persistMu.Lock()
	defer a.persistMu.Unlock()
	if slices.Equal(peers, a.savedPeers) {
		return nil
	}
	data, err := json.Marshal(peers)
	if err != nil {
		return fmt.Errorf("persist peers: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(a.cfg.DataDir, peersFile), data); err != nil {
		return err
	}
	a.savedPeers = peers
	return nil
}

// loadPeers reads the saved peers; a missing or unreadable file is no
// peers (an unreadable one is reported and set aside).
func (a *Agent) loadPeers() []string {
	if a.cfg.DataDir == "" {
		return nil
	}
	path := filepath.Join(a.cfg.DataDir, peersFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var peers []string
	if err == nil {
		err = json.Unmarshal(data, &peers)
	}
	if err != nil {
		aside := fmt.Sprintf("%s.corrupt-%d", path, a.now().Unix())
		a.log.Error("set aside an unreadable peers file", "file", path, "moved_to", aside, "err", err)
		_ = os.Rename(path, aside)
		return nil
	}
	a.savedPeers = peers
	return peers
}

// peerSaveInterval is how often the known peers are written, when changed.
const peerSaveInterval = 10 * time.Second
