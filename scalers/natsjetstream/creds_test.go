package natsjetstream_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers/natsjetstream"
)

// operatorServer is a nats-server in operator (JWT) mode: an operator, a system account and the test's
// accounts, their JWTs preloaded into a memory resolver.
type operatorServer struct {
	srv *testenv.NATSServer
	// accounts holds the accounts the server knows, by name.
	accounts map[string]nkeys.KeyPair
}

// account is one account of an operator-mode server; jetStream grants it unlimited JetStream (an
// operator-mode server gives JetStream only to accounts whose JWT grants limits).
type account struct {
	name      string
	jetStream bool
}

// startOperatorServer starts an operator-mode server that knows accounts (and a system account).
func startOperatorServer(t *testing.T, accounts ...account) *operatorServer {
	t.Helper()
	op := must(t, nkeys.CreateOperator)
	opPub := pub(t, op)
	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "ebb-test"
	opJWT, err := oc.Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	srv := &operatorServer{accounts: map[string]nkeys.KeyPair{}}
	var preload []string
	encodeAccount := func(name string, js bool) string {
		kp := must(t, nkeys.CreateAccount)
		ac := jwt.NewAccountClaims(pub(t, kp))
		ac.Name = name
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit, Streams: jwt.NoLimit, Consumer: jwt.NoLimit}
		}
		aj, err := ac.Encode(op)
		if err != nil {
			t.Fatal(err)
		}
		srv.accounts[name] = kp
		preload = append(preload, fmt.Sprintf("  %s: %q", pub(t, kp), aj))
		return pub(t, kp)
	}
	sys := encodeAccount("SYS", false)
	for _, a := range accounts {
		encodeAccount(a.name, a.jetStream)
	}
	conf := filepath.Join(t.TempDir(), "operator.conf")
	text := fmt.Sprintf("operator: %q\nsystem_account: %s\nresolver: MEMORY\nresolver_preload: {\n%s\n}\n", opJWT, sys, strings.Join(preload, "\n"))
	if err := writeFile(conf, text); err != nil {
		t.Fatal(err)
	}
	srv.srv = testenv.StartNATS(t, testenv.NATSOptions{Args: []string{"-c", conf}})
	return srv
}

// userCreds is the content of a .creds file for a new user of the account signer (whose key signs the
// user JWT), expiring at expires (zero: never), with the user's own seed unless seed is given.
func userCreds(t *testing.T, signer nkeys.KeyPair, expires time.Time, seed []byte) string {
	t.Helper()
	user := must(t, nkeys.CreateUser)
	uc := jwt.NewUserClaims(pub(t, user))
	uc.Name = "ebb"
	if !expires.IsZero() {
		uc.Expires = expires.Unix()
	}
	uj, err := uc.Encode(signer)
	if err != nil {
		t.Fatal(err)
	}
	own := userSeed(t, user)
	creds, err := jwt.FormatUserConfig(uj, own)
	if err != nil {
		t.Fatal(err)
	}
	if seed != nil {
		// FormatUserConfig refuses a seed that is not the JWT's subject's: swap it in afterwards.
		return strings.Replace(string(creds), string(own), string(seed), 1)
	}
	return string(creds)
}

// credsOpt logs an outside client in with creds (the content of a .creds file).
func credsOpt(t *testing.T, creds string) nats.Option {
	t.Helper()
	uj, err := nkeys.ParseDecoratedJWT([]byte(creds))
	if err != nil {
		t.Fatal(err)
	}
	kp, err := nkeys.ParseDecoratedNKey([]byte(creds))
	if err != nil {
		t.Fatal(err)
	}
	return nats.UserJWTAndSeed(uj, string(userSeed(t, kp)))
}

// The content of a .creds file from the TriggerAuthentication logs in to an operator-mode server (user
// JWT signed by an account the operator signed, the account's JetStream granted in its JWT). An expired
// user, a user of an account the server does not know, or a JWT with another user's seed is
// ErrAuthentication; a user of an account without JetStream is ErrNoJetStream. Each bad case differs from
// the good creds in that one respect (the good user expires in an hour), as the server says only
// "authentication error".
func TestCreds(t *testing.T) {
	stranger := must(t, nkeys.CreateAccount) // an account no operator of the server signed
	s := startOperatorServer(t, account{name: "ORDERS", jetStream: true}, account{name: "PLAIN"})
	good := userCreds(t, s.accounts["ORDERS"], time.Now().Add(time.Hour), nil)
	j := js(t, s.srv.URL, credsOpt(t, good))
	stream(t, j, "orders", 1)
	consumer(t, j, "orders", "workers", 1)
	publish(t, j, "orders", 2)

	p := natsjetstream.NewPool()
	defer p.Close()
	meta := md("natsServerURL", s.srv.URL, "stream", "orders", "consumer", "workers")
	eventually(t, 5*time.Second, valueIs(newTrigger(t, p, meta, md("creds", good)), 2))

	for _, tc := range []struct {
		name  string
		creds string
		want  error
	}{
		{name: "expired", creds: userCreds(t, s.accounts["ORDERS"], time.Now().Add(-time.Minute), nil), want: natsjetstream.ErrAuthentication},
		{name: "unknown-account", creds: userCreds(t, stranger, time.Time{}, nil), want: natsjetstream.ErrAuthentication},
		{name: "other-users-seed", creds: userCreds(t, s.accounts["ORDERS"], time.Time{}, userSeed(t, must(t, nkeys.CreateUser))), want: natsjetstream.ErrAuthentication},
		{name: "account-without-jetstream", creds: userCreds(t, s.accounts["PLAIN"], time.Time{}, nil), want: natsjetstream.ErrNoJetStream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sampleErr(t, newTrigger(t, p, meta, md("creds", tc.creds)))
			isErr(t, err, tc.want)
			t.Log(err)
		})
	}
	t.Run("no-credentials", func(t *testing.T) {
		_, err := sampleErr(t, newTrigger(t, p, meta, nil))
		isErr(t, err, natsjetstream.ErrAuthentication)
	})
}

func must(t *testing.T, create func() (nkeys.KeyPair, error)) nkeys.KeyPair {
	t.Helper()
	kp, err := create()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func pub(t *testing.T, kp nkeys.KeyPair) string {
	t.Helper()
	p, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(name, text string) error { return os.WriteFile(name, []byte(text), 0o600) }
