// Package awstest answers real aws-sdk-go-v2 clients from an in-memory
// model of AWS accounts, for tests that may not reach AWS.
//
// The model is a middleware inserted just before each operation's
// deserializer: validation, serialization, endpoint resolution, signing,
// retries and waiters all run for real; the serialized, signed request is
// recorded (Calls) and answered with a typed output or an API error.
// Nothing reaches the network: the HTTP client fails the test if used.
//
// Resources move through their states per describe call (snapshots and
// instances creating -> available after Polls describes; peerings
// pending-acceptance -> active on accept; Route 53 changes PENDING ->
// INSYNC after Polls GetChange calls), so waiters really wait.
package awstest

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Call is one request as it would have left the process.
type Call struct {
	Account   string
	Service   string
	Operation string
	Method    string
	Path      string
	Target    string // X-Amz-Target (JSON protocols)
	Body      string // text bodies as they are; binary ones hex
}

// Model is the accounts and what was asked of them.
type Model struct {
	mu       sync.Mutex
	accounts map[string]*Account
	keys     map[string]string // access key id -> account
	calls    []Call
	// Polls is how many describes a creating resource needs; default 2.
	Polls int
	// Throttle answers the next N calls of an operation with Throttling.
	Throttle map[string]int
	// Fail answers the next call of an operation with this error, once.
	Fail map[string]error
	// After runs after each answered call (outside the lock): tests cancel
	// a context here to interrupt a run at an exact point.
	After func(op string)
	// NetworkUsed counts requests that reached the HTTP client (must stay 0).
	NetworkUsed int
	// OnParameter runs (outside the lock) for each parameter a
	// ModifyDBParameterGroup call set, as RDS applies a dynamic parameter
	// to the instances of the group: tests set the variable on the real
	// server behind the modelled instance here.
	OnParameter func(Parameter)
	applied     []Parameter
	seq         int
}

// Parameter is one parameter set in a DB parameter group.
type Parameter struct{ Account, Group, Name, Value string }

// New returns an empty model.
func New() *Model {
	return &Model{accounts: map[string]*Account{}, keys: map[string]string{}, Throttle: map[string]int{}, Fail: map[string]error{}}
}

// Account adds (or returns) an account in a region.
func (m *Model) Account(id, region string) *Account {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.accounts[id]; ok {
		return a
	}
	a := newAccount(id, region)
	m.accounts[id] = a
	return a
}

// Credentials returns static credentials that sign as the account.
func (m *Model) Credentials(account string) aws.CredentialsProvider {
	key := "AKIATEST" + account
	m.mu.Lock()
	m.keys[key] = account
	m.mu.Unlock()
	return credentials.NewStaticCredentialsProvider(key, "secret-"+account, "")
}

// LoadOptions wire the model into config.LoadDefaultConfig: the
// interceptor, a deny-all HTTP client, and credentials of the account.
func (m *Model) LoadOptions(account string) []func(*config.LoadOptions) error {
	return []func(*config.LoadOptions) error{
		config.WithAPIOptions([]func(*middleware.Stack) error{m.install}),
		config.WithHTTPClient(denyAll{m}),
		config.WithCredentialsProvider(m.Credentials(account)),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
		config.WithEC2IMDSClientEnableState(1), // disabled
	}
}

// Calls returns the recorded requests.
func (m *Model) Calls() []Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Call(nil), m.calls...)
}

// Count tells how many times an operation was called (retries included).
func (m *Model) Count(op string) int {
	n := 0
	for _, c := range m.Calls() {
		if c.Operation == op {
			n++
		}
	}
	return n
}

// Golden renders the calls one per line, consecutive repeats (polling)
// folded, for comparing with a golden file.
func Golden(calls []Call, skipOps ...string) string {
	var b strings.Builder
	prev, n := "", 0
	flush := func() {
		if prev != "" {
			if n > 1 {
				prev += " (polled)"
			}
			b.WriteString(prev + "\n")
		}
	}
	for _, c := range calls {
		if slices.Contains(skipOps, c.Operation) {
			continue
		}
		line := fmt.Sprintf("%s %s %s %s %s", c.Account, c.Service, c.Method, c.Path, c.Operation)
		if c.Target != "" {
			line += " [" + c.Target + "]"
		}
		if c.Body != "" {
			line += "\n    " + c.Body
		}
		if line == prev {
			n++
			continue
		}
		flush()
		prev, n = line, 1
	}
	flush()
	return b.String()
}

type denyAll struct{ m *Model }

func (d denyAll) Do(*http.Request) (*http.Response, error) {
	d.m.mu.Lock()
	d.m.NetworkUsed++
	d.m.mu.Unlock()
	return nil, errors.New("awstest: the network is not allowed in tests")
}

type inputKey struct{}

func (m *Model) install(stack *middleware.Stack) error {
	capture := middleware.InitializeMiddlewareFunc("awstest.capture", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		return next.HandleInitialize(middleware.WithStackValue(ctx, inputKey{}, in.Parameters), in)
	})
	if err := stack.Initialize.Add(capture, middleware.Before); err != nil {
		return err
	}
	answer := middleware.DeserializeMiddlewareFunc("awstest.answer", func(ctx context.Context, in middleware.DeserializeInput, _ middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
		req, ok := in.Request.(*smithyhttp.Request)
		if !ok {
			return middleware.DeserializeOutput{}, middleware.Metadata{}, fmt.Errorf("awstest: unexpected request type %T", in.Request)
		}
		out, err := m.answer(ctx, req, middleware.GetStackValue(ctx, inputKey{}))
		return middleware.DeserializeOutput{Result: out}, middleware.Metadata{}, err
	})
	return stack.Deserialize.Insert(answer, "OperationDeserializer", middleware.Before)
}

var credRE = regexp.MustCompile(`Credential=([A-Z0-9]+)/`)

func (m *Model) answer(ctx context.Context, req *smithyhttp.Request, input any) (any, error) {
	service, op := awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)
	var body []byte
	if s := req.GetStream(); s != nil {
		body, _ = io.ReadAll(s)
	}
	key := ""
	if mm := credRE.FindStringSubmatch(req.Header.Get("Authorization")); mm != nil {
		key = mm[1]
	}
	m.mu.Lock()
	acct, known := m.keys[key]
	call := Call{Account: acct, Service: service, Operation: op, Method: req.Method, Path: req.URL.Path, Target: req.Header.Get("X-Amz-Target"), Body: renderBody(body)}
	m.calls = append(m.calls, call)
	var out any
	var err error
	switch {
	case !known:
		err = apiErr("InvalidClientTokenId", "the security token included in the request is invalid (unsigned or unknown key)")
	case m.Throttle[op] > 0:
		m.Throttle[op]--
		err = apiErr("Throttling", "Rate exceeded")
	case m.Fail[op] != nil:
		err = m.Fail[op]
		delete(m.Fail, op)
	default:
		a := m.accounts[acct]
		if a == nil {
			err = apiErr("AccessDenied", "account "+acct+" is not modelled")
			break
		}
		out, err = m.dispatch(a, service, op, input)
	}
	after, onParam, applied := m.After, m.OnParameter, m.applied
	m.applied = nil
	m.mu.Unlock()
	if onParam != nil {
		for _, p := range applied {
			onParam(p)
		}
	}
	if after != nil {
		after(op)
	}
	return out, err
}

func renderBody(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	for _, c := range b {
		if c < 0x09 || (c > 0x0d && c < 0x20) || c > 0x7e {
			return "hex:" + hex.EncodeToString(b)
		}
	}
	return string(bytes.TrimSpace(b))
}

func apiErr(code, msg string) error {
	return &smithy.GenericAPIError{Code: code, Message: msg, Fault: smithy.FaultClient}
}

func (m *Model) dispatch(a *Account, service, op string, in any) (any, error) {
	switch service {
	case "STS":
		return m.sts(a, op, in)
	case "RDS":
		return m.rds(a, op, in)
	case "KMS":
		return m.kms(a, op, in)
	case "EC2":
		return m.ec2(a, op, in)
	case "Route 53":
		return m.route53(a, op, in)
	case "CloudWatch":
		return m.cloudwatch(a, op, in)
	}
	return nil, apiErr("UnknownOperation", service+" "+op+" is not modelled")
}

func (m *Model) polls() int {
	if m.Polls == 0 {
		return 2
	}
	return m.Polls
}

func (m *Model) next(prefix string) string {
	m.seq++
	return fmt.Sprintf("%s%08x", prefix, m.seq)
}

// Account is one modelled AWS account.
type Account struct {
	ID, Region string
	Instances  map[string]*Instance
	Snapshots  map[string]*Snapshot
	Keys       map[string]*Key   // by key id
	Aliases    map[string]string // alias name -> key id
	Params     map[string]map[string]string
	Peerings   map[string]*Peering
	Routes     map[string]string // "rtb cidr" -> peering id
	Rules      map[string]*Rule
	Records    map[string]map[string]*Record // zone -> "name type setid" -> record
	Changes    map[string]int                // change id -> GetChange calls left before INSYNC
	// Requests are returned, one slice per GetMetricData call, as the old
	// load balancer's RequestCount datapoints; when used up: no datapoints.
	Requests [][]float64
}

func newAccount(id, region string) *Account {
	a := &Account{ID: id, Region: region, Instances: map[string]*Instance{}, Snapshots: map[string]*Snapshot{},
		Keys: map[string]*Key{}, Aliases: map[string]string{}, Params: map[string]map[string]string{},
		Peerings: map[string]*Peering{}, Routes: map[string]string{}, Rules: map[string]*Rule{},
		Records: map[string]map[string]*Record{}, Changes: map[string]int{}}
	// Every account has its AWS-managed RDS key.
	a.Keys["aws-rds-"+id] = &Key{ID: "aws-rds-" + id, AWSManaged: true, State: "Enabled"}
	a.Aliases["alias/aws/rds"] = "aws-rds-" + id
	return a
}

func (a *Account) keyARN(id string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", a.Region, a.ID, id)
}

// Instance is an RDS DB instance.
type Instance struct {
	ID, Status, Engine, ParameterGroup, Host, KMSKey string
	Port, BackupRetention                            int32
	FinalSnapshot                                    string
	pending                                          int
}

// Snapshot is an RDS DB snapshot.
type Snapshot struct {
	ID, Instance, Status, KMSKey, Engine string
	SharedWith                           []string
	pending                              int
}

// Key is a KMS key.
type Key struct {
	ID, Policy, State string
	AWSManaged        bool
	DeletionDays      int32
}

// Peering is a VPC peering connection.
type Peering struct {
	ID, Requester, Accepter, PeerOwner, Status, Tag string
}

// Rule is a security-group ingress rule.
type Rule struct {
	ID, Group, CIDR, Tag string
	Port                 int32
}

// Record is a Route 53 record set (alias or plain).
type Record struct {
	Name, Type, SetID, Alias, Value string
	Weight, TTL                     int64
}
