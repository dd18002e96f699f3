package kube

import (
	"context"
	"fmt"
	"strings"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// ServiceEndpoints are the endpoints of the Service a webhook configuration calls.
type ServiceEndpoints struct {
	Namespace, Name string
	// Missing says the Service does not exist.
	Missing bool
	// ExternalName is the Service's external name when it is of type ExternalName.
	ExternalName string
	// Ready and NotReady count the endpoints of its EndpointSlices.
	Ready, NotReady int
	// ReadyPods are the ready endpoints' pods (namespace is the Service's), for a port-forward.
	ReadyPods []string
	Err       error
}

// ReadServiceEndpoints reads a Service and counts the endpoints of its EndpointSlices.
func ReadServiceEndpoints(ctx context.Context, c kubernetes.Interface, namespace, name string) ServiceEndpoints {
	e := ServiceEndpoints{Namespace: namespace, Name: name}
	svc, err := c.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		e.Missing = true
		return e
	case err != nil:
		e.Err = err
		return e
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		e.ExternalName = svc.Spec.ExternalName
		return e
	}
	slices, err := c.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		e.Err = err
		return e
	}
	for _, s := range slices.Items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				e.Ready++
				if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" {
					e.ReadyPods = append(e.ReadyPods, ep.TargetRef.Name)
				}
				continue
			}
			e.NotReady++
		}
	}
	return e
}

// Permission is one thing the plugin does, and whether the current user may.
type Permission struct {
	authorizationv1.ResourceAttributes
	// For says which command needs it.
	For string
	// Required: check itself cannot judge the install without it.
	Required bool
	Allowed  bool
	Err      error
}

func (p Permission) String() string {
	r := p.Resource
	if p.Subresource != "" {
		r += "/" + p.Subresource
	}
	if p.Group != "" {
		r += "." + p.Group
	}
	if p.Namespace != "" {
		r += " in " + p.Namespace
	}
	return p.Verb + " " + r
}

// pluginPermissions are the API calls the plugin's commands make.
func pluginPermissions() []Permission {
	p := func(verb, group, resource, sub, namespace, forWhat string, required bool) Permission {
		return Permission{ResourceAttributes: authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Subresource: sub, Namespace: namespace},
			For: forWhat, Required: required}
	}
	const ar = "admissionregistration.k8s.io"
	return []Permission{
		p("list", "", "nodes", "", "", "every command", true),
		p("list", "", "pods", "", "", "check, savings, preview, disable", true),
		p("watch", "", "pods", "", "", "reading every pod as one stream rather than in pages", false),
		p("get", "", "configmaps", "", names.Namespace, "the settings", true),
		p("get", ar, "mutatingadmissionpolicies", "", "", "the node-policy mode", true),
		p("get", ar, "mutatingwebhookconfigurations", "", "", "the node-policy mode", true),
		p("patch", "", "nodes", "", "", "enable, disable", false),
		p("patch", "", "nodes", "status", "", "disable restores the raw allocatable", false),
		p("list", "metrics.k8s.io", "nodes", "", "", "usage in savings and preview", false),
		p("list", "metrics.k8s.io", "pods", "", "", "savings --pods", false),
	}
}

// CheckPermissions asks the apiserver, with SelfSubjectAccessReviews, whether the current user
// may make each of the plugin's calls.
func CheckPermissions(ctx context.Context, c kubernetes.Interface) []Permission {
	perms := pluginPermissions()
	var wg sync.WaitGroup
	for i := range perms {
		wg.Add(1)
		go func(p *Permission) {
			defer wg.Done()
			ra := p.ResourceAttributes
			review, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &ra}}, metav1.CreateOptions{})
			if err != nil {
				p.Err = err
				return
			}
			p.Allowed = review.Status.Allowed
		}(&perms[i])
	}
	wg.Wait()
	return perms
}

// Autoscaler says whether a cluster autoscaler runs, and how that was found.
type Autoscaler struct {
	// Found names the evidence; "" when none was found.
	Found string
	Err   error
}

// FindAutoscaler looks for the Kubernetes cluster autoscaler: the status ConfigMap it writes by
// default (kube-system/cluster-autoscaler-status), or a Deployment in kube-system whose name says
// cluster-autoscaler (how its chart and the cloud add-ons name it).
func FindAutoscaler(ctx context.Context, c kubernetes.Interface) Autoscaler {
	const ns, status = metav1.NamespaceSystem, "cluster-autoscaler-status"
	_, err := c.CoreV1().ConfigMaps(ns).Get(ctx, status, metav1.GetOptions{})
	switch {
	case err == nil:
		return Autoscaler{Found: "ConfigMap " + ns + "/" + status}
	case !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err):
		return Autoscaler{Err: fmt.Errorf("cannot read ConfigMap %s/%s: %w", ns, status, err)}
	}
	deps, derr := c.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if derr != nil {
		if apierrors.IsForbidden(err) {
			return Autoscaler{Err: fmt.Errorf("cannot read ConfigMap %s/%s (%v) nor list Deployments: %w", ns, status, err, derr)}
		}
		return Autoscaler{Err: fmt.Errorf("cannot list Deployments in %s: %w", ns, derr)}
	}
	for _, d := range deps.Items {
		if strings.Contains(d.Name, "cluster-autoscaler") {
			return Autoscaler{Found: "Deployment " + ns + "/" + d.Name}
		}
	}
	return Autoscaler{}
}
