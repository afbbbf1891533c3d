package httpapi

import (
	"encoding/json"

	"github.com/lanyard-id/lanyard/api"
	"github.com/lanyard-id/lanyard/keys"
)

// discoveryDocument renders /.well-known/openid-configuration once at start.
func discoveryDocument(issuer string, alg keys.Algorithm) ([]byte, error) {
	return json.Marshal(api.OpenIDConfiguration{
		Issuer:                            issuer,
		JwksUri:                           issuer + "/.well-known/jwks.json",
		TokenEndpoint:                     issuer + "/v1/auth/refresh",
		ResponseTypesSupported:            []string{"token"},
		SubjectTypesSupported:             []api.OpenIDConfigurationSubjectTypesSupported{"public"},
		IdTokenSigningAlgValuesSupported:  []api.OpenIDConfigurationIdTokenSigningAlgValuesSupported{api.OpenIDConfigurationIdTokenSigningAlgValuesSupported(alg)},
		GrantTypesSupported:               &[]string{"refresh_token"},
		TokenEndpointAuthMethodsSupported: &[]string{"none"},
	})
}
