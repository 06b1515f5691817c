package valuesync

import (
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	authenticationv1 "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationv1 "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
)

// withDelegatedAuth puts h behind kube-apiserver's authentication (a TokenReview of the bearer token) and
// authorization (a SubjectAccessReview of the request's verb on its path, a non-resource URL), as
// controller-runtime's metrics filters do, except that a token the review rejects is 401, not 500:
// kube-apiserver answers a bad token with 401 too, and a stranger's garbage is not this server's error.
// Reviews are cached (allowed for 5 minutes, denied for 30 seconds, tokens for a minute).
func withDelegatedAuth(cfg *rest.Config, httpClient *http.Client, log logr.Logger, h http.Handler) (http.Handler, error) {
	authn, err := authenticationv1.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	authz, err := authorizationv1.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	// The backoff of k8s.io/apiserver's DefaultAuthWebhookRetryBackoff.
	backoff := &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
	authenticator, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
		Anonymous:                &apiserver.AnonymousAuthConfig{Enabled: false},
		CacheTTL:                 time.Minute,
		TokenAccessReviewClient:  authn,
		TokenAccessReviewTimeout: 10 * time.Second,
		WebhookRetryBackoff:      backoff,
	}.New()
	if err != nil {
		return nil, fmt.Errorf("delegated authentication: %w", err)
	}
	authorizerImpl, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: authz,
		AllowCacheTTL:             5 * time.Minute,
		DenyCacheTTL:              30 * time.Second,
		WebhookRetryBackoff:       backoff,
	}.New()
	if err != nil {
		return nil, fmt.Errorf("delegated authorization: %w", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, ok, err := authenticator.AuthenticateRequest(r)
		if err != nil || !ok {
			log.V(4).Info("unauthenticated values request", "remote", r.RemoteAddr, "error", err)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		attrs := authorizer.AttributesRecord{User: res.User, Verb: "get", Path: r.URL.Path}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			attrs.Verb = "unsupported" // only get is ever granted; the handler answers 405 to the rest
		}
		decision, reason, err := authorizerImpl.Authorize(r.Context(), attrs)
		if err != nil {
			log.Error(err, "authorizing a values request", "user", res.User.GetName())
			http.Error(w, "authorization failed", http.StatusInternalServerError)
			return
		}
		if decision != authorizer.DecisionAllow {
			log.V(4).Info("forbidden values request", "user", res.User.GetName(), "reason", reason)
			http.Error(w, fmt.Sprintf("%s may not get %s", res.User.GetName(), r.URL.Path), http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	}), nil
}
