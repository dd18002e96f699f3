package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/overcommit-dev/overcommit/hack/cluster"
)

// WebhookServiceAccount is the ServiceAccount deploy/ runs the webhook as.
const WebhookServiceAccount = "overcommit-webhook"

// WebhookKubeconfig returns a cluster.WebhookOptions.Kubeconfig for a node-policy mode: it
// creates the Namespace, ServiceAccount and RBAC of deploy/base in that mode, mints a token for
// the ServiceAccount with the TokenRequest API and returns a kubeconfig with that token, so the
// suite's webhook runs with exactly the permissions an install grants (and, in policy mode, is
// the writer the records' ValidatingAdmissionPolicy lets publish). Pair it with Forbidden in
// the suite's Verify.
func WebhookKubeconfig(mode string) func(ctx context.Context, c *cluster.Cluster) (string, error) {
	return func(ctx context.Context, c *cluster.Cluster) (string, error) {
		objs, err := Rendered("base", mode)
		if err != nil {
			return "", err
		}
		if err := Create(ctx, c.Client(), objs, func(o runtime.Object) bool {
			switch o.(type) {
			case *corev1.Namespace, *corev1.ServiceAccount, *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding, *rbacv1.Role, *rbacv1.RoleBinding:
				return true
			}
			return false
		}); err != nil {
			return "", err
		}
		return ServiceAccountKubeconfig(ctx, c, filepath.Join(c.WorkDir(), "kubeconfig", "overcommit-webhook-sa.kubeconfig"))
	}
}

// ServiceAccountKubeconfig writes to path a kubeconfig holding a day-long token of the webhook's
// ServiceAccount.
func ServiceAccountKubeconfig(ctx context.Context, c *cluster.Cluster, path string) (string, error) {
	day := int64(24 * 60 * 60)
	tr, err := c.Client().CoreV1().ServiceAccounts(cluster.WebhookNamespace).CreateToken(ctx, WebhookServiceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &day}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for ServiceAccount %s: %w", WebhookServiceAccount, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: c.RESTConfig().Host, CertificateAuthorityData: c.CA()}
	cfg.AuthInfos[WebhookServiceAccount] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: WebhookServiceAccount}
	cfg.CurrentContext = "local"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("creating kubeconfig dir: %w", err)
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// Create creates the objects that keep selects, in order; existing ones are left as they are.
func Create(ctx context.Context, cs kubernetes.Interface, objs []runtime.Object, keep func(runtime.Object) bool) error {
	for _, o := range objs {
		if !keep(o) {
			continue
		}
		var err error
		switch v := o.(type) {
		case *corev1.Namespace:
			_, err = cs.CoreV1().Namespaces().Create(ctx, v, metav1.CreateOptions{})
		case *corev1.ServiceAccount:
			_, err = cs.CoreV1().ServiceAccounts(v.Namespace).Create(ctx, v, metav1.CreateOptions{})
		case *corev1.Secret:
			_, err = cs.CoreV1().Secrets(v.Namespace).Create(ctx, v, metav1.CreateOptions{})
		case *rbacv1.ClusterRole:
			_, err = cs.RbacV1().ClusterRoles().Create(ctx, v, metav1.CreateOptions{})
		case *rbacv1.ClusterRoleBinding:
			_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, v, metav1.CreateOptions{})
		case *rbacv1.Role:
			_, err = cs.RbacV1().Roles(v.Namespace).Create(ctx, v, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			_, err = cs.RbacV1().RoleBindings(v.Namespace).Create(ctx, v, metav1.CreateOptions{})
		default:
			return fmt.Errorf("create: unexpected %T", o)
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %T: %w", o, err)
		}
	}
	return nil
}

// Forbidden finds the lines of a log that report a request refused by RBAC.
func Forbidden(logFile string) ([]string, error) {
	data, err := os.ReadFile(logFile)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(strings.ToLower(l), "forbidden") {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// VerifyNotForbidden is a Suite.Verify: everything the suite made the webhook do was allowed by
// the RBAC of deploy/ (with WebhookKubeconfig).
func VerifyNotForbidden(c *cluster.Cluster) error {
	lines, err := Forbidden(c.LogFile("overcommit-webhook"))
	if err != nil || len(lines) > 0 {
		return fmt.Errorf("the webhook, running with the RBAC of deploy/, was refused (%v):\n%s", err, strings.Join(lines, "\n"))
	}
	return nil
}
