package httpapi

import (
	"encoding/json"
	"sync/atomic"

	"github.com/lanyard-id/lanyard/api"
	"github.com/lanyard-id/lanyard/keys"
)

// discoveryDocument renders /.well-known/openid-configuration for a key ring.
func discoveryDocument(issuer string, ring *keys.Ring) ([]byte, error) {
	var algs []api.OpenIDConfigurationIdTokenSigningAlgValuesSupported
	for _, a := range ring.Algorithms() {
		algs = append(algs, api.OpenIDConfigurationIdTokenSigningAlgValuesSupported(a))
	}
	// Only what Lanyard serves: no token endpoint (the refresh endpoint is
	// JSON, not an RFC 6749 token request) and no authorization endpoint.
	return json.Marshal(api.OpenIDConfiguration{
		Issuer:                           issuer,
		JwksUri:                          issuer + jwksPath,
		SubjectTypesSupported:            []api.OpenIDConfigurationSubjectTypesSupported{api.OpenIDConfigurationSubjectTypesSupportedPublic},
		IdTokenSigningAlgValuesSupported: algs,
	})
}

// discoveryCache keeps the rendered document for one ring, so it is rebuilt
// only when the keys change (a rotation to another algorithm changes it).
type discoveryCache struct {
	issuer string
	cached atomic.Pointer[renderedDiscovery]
}

type renderedDiscovery struct {
	ring *keys.Ring
	body []byte
}

func (d *discoveryCache) document(ring *keys.Ring) ([]byte, error) {
	if c := d.cached.Load(); c != nil && c.ring == ring {
		return c.body, nil
	}
	body, err := discoveryDocument(d.issuer, ring)
	if err != nil {
		return nil, err
	}
	d.cached.Store(&renderedDiscovery{ring: ring, body: body})
	return body, nil
}
