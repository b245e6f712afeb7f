package api

import (
	"context"
	"net/http"
	"net/url"
)

// keyringRequest is the body of a keyring write.
type keyringRequest struct {
	Key string
}

// KeyringList lists the gossip keys of every member (with localOnly, of
// this agent only): one KeyringResponse for Shoal's one pool.
func (c *Client) KeyringList(ctx context.Context, localOnly bool) ([]*KeyringResponse, error) {
	var q url.Values
	if localOnly {
		q = url.Values{"local-only": {"true"}}
	}
	out, _, err := get[[]*KeyringResponse](ctx, c, "/v1/operator/keyring", q)
	return out, err
}

// KeyringInstall installs a gossip key (base64) on every member, beside
// the keys they hold.
func (c *Client) KeyringInstall(ctx context.Context, key string) error {
	return c.keyring(ctx, http.MethodPost, key)
}

// KeyringUse makes an installed key every member's primary: the key
// their gossip is encrypted with.
func (c *Client) KeyringUse(ctx context.Context, key string) error {
	return c.keyring(ctx, http.MethodPut, key)
}

// KeyringRemove removes a key, not the primary, from every member.
func (c *Client) KeyringRemove(ctx context.Context, key string) error {
	return c.keyring(ctx, http.MethodDelete, key)
}

func (c *Client) keyring(ctx context.Context, method, key string) error {
	_, err := c.do(ctx, method, "/v1/operator/keyring", nil, keyringRequest{Key: key}, nil)
	return err
}
