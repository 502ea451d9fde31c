//! The in-cluster objects a stack should have, computed from its spec and outputs without I/O.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use kube::{Resource, ResourceExt};
use serde_json::{json, Value};

use super::{ObjectKind, COMPONENT_LABEL, MANAGED_BY, STACK_LABEL};
use crate::api::{
    CacheEngine, DatabaseKind, Engine, FrontendKind, InClusterWorkload, Outputs, Runtime, TierSpec,
    WebStack,
};

/// What the cluster offers and the operator was told, as far as the desired objects depend
/// on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// The IngressClass of Ingresses whose spec names none (`--ingress-class`).
    pub ingress_class: Option<String>,
    /// The cluster serves `autoscaling/v2`.
    pub autoscaling_v2: bool,
}

/// One object, as the body of a server-side apply.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    pub kind: ObjectKind,
    pub name: String,
    pub body: Value,
}

/// Something declared that the cluster cannot give as declared, with the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortfall {
    pub field: String,
    pub message: String,
}

/// The objects a stack should have in its namespace, in the order they are applied (what a
/// Deployment reads before the Deployment).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Desired {
    pub objects: Vec<Object>,
    pub shortfalls: Vec<Shortfall>,
}

impl Desired {
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    pub fn contains(&self, kind: ObjectKind, name: &str) -> bool {
        self.objects
            .iter()
            .any(|o| o.kind == kind && o.name == name)
    }
}

/// One workload: the in-cluster frontend or an in-cluster backend tier.
struct Workload<'a> {
    component: &'a str,
    field: String,
    spec: &'a InClusterWorkload,
    tier: Option<&'a TierSpec>,
}

/// The component name of the in-cluster frontend (a backend tier cannot take it).
pub const FRONTEND: &str = "frontend";

fn workloads(stack: &WebStack) -> Vec<Workload<'_>> {
    let s = &stack.spec;
    let frontend = s
        .frontend
        .as_ref()
        .filter(|f| f.kind == FrontendKind::InCluster)
        .and_then(|f| f.in_cluster.as_ref())
        .map(|spec| Workload {
            component: FRONTEND,
            field: "spec.frontend.inCluster".into(),
            spec,
            tier: None,
        });
    let tiers = s
        .backend
        .iter()
        .flat_map(|b| b.tiers.iter().enumerate())
        .filter(|(_, t)| t.runtime == Runtime::InCluster)
        .filter_map(|(i, t)| {
            t.in_cluster.as_ref().map(|spec| Workload {
                component: t.name.as_str(),
                field: format!("spec.backend.tiers[{i}]"),
                spec,
                tier: Some(t),
            })
        });
    frontend.into_iter().chain(tiers).collect()
}

/// Whether the stack has anything in the cluster: a workload, or a database or cache whose
/// connection Secret in-cluster consumers read.
pub fn has_any(stack: &WebStack) -> bool {
    !workloads(stack).is_empty() || connects(stack)
}

/// Whether some workload asks for an autoscaler.
pub fn wants_autoscaling(stack: &WebStack) -> bool {
    workloads(stack)
        .iter()
        .any(|w| w.tier.is_some_and(|t| t.scaling.is_some()))
}

fn connects(stack: &WebStack) -> bool {
    let s = &stack.spec;
    s.database
        .as_ref()
        .is_some_and(|d| d.kind == DatabaseKind::Rds)
        || s.cache.is_some()
}

/// The name of a stack's object for a component: `<stack>-<component>`.
pub fn object_name(stack: &WebStack, component: &str) -> String {
    format!("{}-{component}", stack.name_any())
}

/// The connection Secret's name.
pub fn connection_secret(stack: &WebStack) -> String {
    object_name(stack, "connection")
}

/// The endpoints ConfigMap's name.
pub fn endpoints_config(stack: &WebStack) -> String {
    object_name(stack, "endpoints")
}

const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The labels every object of the stack carries.
pub fn labels(stack: &WebStack, component: &str) -> BTreeMap<String, String> {
    let mut labels = selector(stack, component);
    labels.insert("app.kubernetes.io/name".into(), component.into());
    labels.insert("app.kubernetes.io/instance".into(), stack.name_any());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels
}

/// The labels that pick a workload's pods (immutable in a Deployment).
fn selector(stack: &WebStack, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (STACK_LABEL.to_owned(), stack.name_any()),
        (COMPONENT_LABEL.to_owned(), component.to_owned()),
    ])
}

/// The label selector of every object the operator made for a stack.
pub fn stack_selector(stack: &WebStack) -> String {
    format!(
        "{STACK_LABEL}={},{MANAGED_BY_LABEL}={MANAGED_BY}",
        stack.name_any()
    )
}

fn object(
    stack: &WebStack,
    kind: ObjectKind,
    component: &str,
    name: String,
    rest: Value,
) -> Object {
    let mut body = json!({
        "apiVersion": kind.api_version(),
        "kind": kind.kind(),
        "metadata": {
            "name": name,
            "namespace": stack.namespace().unwrap_or_else(|| "default".into()),
            "labels": labels(stack, component),
            "ownerReferences": [{
                "apiVersion": WebStack::api_version(&()),
                "kind": WebStack::kind(&()),
                "name": stack.name_any(),
                "uid": stack.uid().unwrap_or_default(),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
    });
    if let (Some(map), Value::Object(rest)) = (body.as_object_mut(), rest) {
        map.extend(rest);
    }
    Object { kind, name, body }
}

/// An environment variable name for a component: upper case, `-` as `_`.
fn env_name(component: &str) -> String {
    component.to_uppercase().replace('-', "_")
}

/// The objects the stack should have. `password` is the database password, read only when
/// the spec asks for it to be copied.
pub fn desired(
    stack: &WebStack,
    outputs: Option<&Outputs>,
    password: Option<&str>,
    settings: &Settings,
) -> Desired {
    let mut out = Desired::default();
    let workloads = workloads(stack);
    let connects = connects(stack);
    if !workloads.is_empty() {
        out.objects.push(endpoints(stack, &workloads, outputs));
    }
    if connects {
        out.objects.push(connection(stack, outputs, password));
    }
    for w in &workloads {
        workload(stack, w, connects, settings, &mut out);
    }
    out
}

/// The ConfigMap with the stack's URLs: the public one, each load balancer's, each
/// in-cluster Service's.
fn endpoints(stack: &WebStack, workloads: &[Workload], outputs: Option<&Outputs>) -> Object {
    let ns = stack.namespace().unwrap_or_else(|| "default".into());
    let mut data = BTreeMap::new();
    if let Some(o) = outputs {
        if let Some(url) = &o.url {
            data.insert("WEBSTACK_URL".to_owned(), url.clone());
        }
        if let Some(cdn) = &o.cdn {
            data.insert("WEBSTACK_CDN_DOMAIN".to_owned(), cdn.domain_name.clone());
        }
        for (name, t) in &o.tiers {
            let tls = stack
                .spec
                .backend
                .iter()
                .flat_map(|b| &b.tiers)
                .any(|x| &x.name == name && x.load_balancer.certificate.is_some());
            let scheme = if tls { "https" } else { "http" };
            data.insert(
                format!("WEBSTACK_{}_URL", env_name(name)),
                format!("{scheme}://{}", t.load_balancer_dns),
            );
        }
    }
    for w in workloads {
        data.insert(
            format!("WEBSTACK_{}_URL", env_name(w.component)),
            format!("http://{}.{ns}.svc", object_name(stack, w.component)),
        );
    }
    object(
        stack,
        ObjectKind::ConfigMap,
        "endpoints",
        endpoints_config(stack),
        json!({ "data": data }),
    )
}

/// The connection Secret: where the database and the cache are, and where the password is
/// kept; the password itself only when the spec asks for it.
fn connection(stack: &WebStack, outputs: Option<&Outputs>, password: Option<&str>) -> Object {
    let s = &stack.spec;
    let mut data: BTreeMap<&str, String> = BTreeMap::new();
    if let Some(rds) = s
        .database
        .as_ref()
        .filter(|d| d.kind == DatabaseKind::Rds)
        .and_then(|d| d.rds.as_ref())
    {
        data.insert(
            "DATABASE_ENGINE",
            match rds.engine {
                Engine::Postgres => "postgres",
                Engine::Mysql => "mysql",
            }
            .into(),
        );
        data.insert("DATABASE_NAME", rds.database_name.clone());
        data.insert("DATABASE_USER", rds.master_username.clone());
        if let Some(db) = outputs.and_then(|o| o.database.as_ref()) {
            data.insert("DATABASE_HOST", db.endpoint.clone());
            data.insert("DATABASE_PORT", db.port.to_string());
            data.insert("DATABASE_PASSWORD_SECRET_ARN", db.secret_arn.clone());
        }
        if s.connection_secret.include_password {
            if let Some(p) = password {
                data.insert("DATABASE_PASSWORD", p.to_owned());
            }
        }
    }
    if let Some(cache) = &s.cache {
        data.insert(
            "CACHE_ENGINE",
            match cache.engine {
                CacheEngine::Valkey => "valkey",
                CacheEngine::Redis => "redis",
            }
            .into(),
        );
        if let Some(c) = outputs.and_then(|o| o.cache.as_ref()) {
            data.insert("CACHE_HOST", c.endpoint.clone());
            data.insert("CACHE_PORT", c.port.to_string());
        }
    }
    let data: BTreeMap<&str, ByteString> = data
        .into_iter()
        .map(|(k, v)| (k, ByteString(v.into_bytes())))
        .collect();
    object(
        stack,
        ObjectKind::Secret,
        "connection",
        connection_secret(stack),
        json!({ "type": "Opaque", "data": data }),
    )
}

fn workload(
    stack: &WebStack,
    w: &Workload,
    connects: bool,
    settings: &Settings,
    out: &mut Desired,
) {
    let name = object_name(stack, w.component);
    let scaling = w.tier.and_then(|t| t.scaling.as_ref());
    let autoscaled = scaling.is_some() && settings.autoscaling_v2;
    // Without an autoscaler the Deployment runs the replicas the spec starts with; with one,
    // the autoscaler owns the count and the Deployment leaves it alone.
    let replicas = match scaling {
        Some(_) if autoscaled => None,
        Some(s) => Some(s.desired.unwrap_or(s.min) as i32),
        None => Some(w.spec.replicas),
    };
    if scaling.is_some() && !settings.autoscaling_v2 {
        out.shortfalls.push(Shortfall {
            field: format!("{}.scaling", w.field),
            message: format!(
                "the cluster does not serve autoscaling/v2: no HorizontalPodAutoscaler for {name}; its Deployment runs a fixed {} replicas",
                replicas.unwrap_or_default()
            ),
        });
    }
    let environment: Vec<Value> = w
        .tier
        .map(|t| {
            t.environment
                .iter()
                .map(|(k, v)| json!({"name": k, "value": v}))
                .collect()
        })
        .unwrap_or_default();
    let mut env_from = vec![json!({"configMapRef": {"name": endpoints_config(stack)}})];
    if connects {
        env_from.push(json!({"secretRef": {"name": connection_secret(stack), "optional": true}}));
    }
    let probe = match w.tier {
        Some(t) => json!({
            "httpGet": {"path": t.health_check.path, "port": "http"},
            "periodSeconds": t.health_check.interval_seconds,
            "successThreshold": t.health_check.healthy_threshold,
            "failureThreshold": t.health_check.unhealthy_threshold,
        }),
        None => json!({"tcpSocket": {"port": "http"}, "periodSeconds": 10}),
    };
    let memory = format!("{}Mi", w.spec.memory_mib);
    let mut spec = json!({
        "selector": {"matchLabels": selector(stack, w.component)},
        "template": {
            "metadata": {"labels": labels(stack, w.component)},
            "spec": {
                "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": w.component,
                    "image": w.spec.image,
                    "ports": [{"name": "http", "containerPort": w.spec.port, "protocol": "TCP"}],
                    "env": environment,
                    "envFrom": env_from,
                    "resources": {
                        "requests": {"cpu": format!("{}m", w.spec.cpu_millis), "memory": memory},
                        "limits": {"memory": memory},
                    },
                    "readinessProbe": probe,
                    "securityContext": {"allowPrivilegeEscalation": false},
                }],
            },
        },
    });
    if let Some(r) = replicas {
        spec["replicas"] = json!(r);
    }
    // Every object of the workload has its name and labels; only the spec differs.
    let push = |out: &mut Desired, kind, spec: Value| {
        let body = json!({ "spec": spec });
        out.objects
            .push(object(stack, kind, w.component, name.clone(), body));
    };
    push(
        out,
        ObjectKind::Service,
        json!({
            "type": "ClusterIP",
            "selector": selector(stack, w.component),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        }),
    );
    push(out, ObjectKind::Deployment, spec);
    let ingress = &w.spec.ingress;
    if ingress.enabled {
        let mut rule = json!({"http": {"paths": [{
            "path": ingress.path,
            "pathType": "Prefix",
            "backend": {"service": {"name": name, "port": {"name": "http"}}},
        }]}});
        if let Some(host) = &ingress.host {
            rule["host"] = json!(host);
        }
        let mut spec = json!({ "rules": [rule] });
        if let Some(class) = ingress
            .class_name
            .as_ref()
            .or(settings.ingress_class.as_ref())
        {
            spec["ingressClassName"] = json!(class);
        }
        push(out, ObjectKind::Ingress, spec);
    }
    if let (Some(s), true) = (scaling, autoscaled) {
        let utilization = |resource: &str, percent: u8| {
            json!({"type": "Resource", "resource": {"name": resource, "target": {
                "type": "Utilization",
                "averageUtilization": percent,
            }}})
        };
        let metrics: Vec<Value> = std::iter::once(("cpu", s.cpu_target_percent.or(Some(70))))
            .chain(std::iter::once(("memory", s.memory_target_percent)))
            .filter_map(|(r, p)| p.map(|p| utilization(r, p)))
            .collect();
        push(
            out,
            ObjectKind::HorizontalPodAutoscaler,
            json!({
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": s.min.max(1),
                "maxReplicas": s.max.max(1),
                "metrics": metrics,
            }),
        );
    }
    // A disruption budget only means something with more than one pod.
    let fewest = match scaling {
        Some(s) if autoscaled => s.min.max(1) as i32,
        _ => replicas.unwrap_or_default(),
    };
    if fewest > 1 {
        push(
            out,
            ObjectKind::PodDisruptionBudget,
            json!({
                "maxUnavailable": 1,
                "selector": {"matchLabels": selector(stack, w.component)},
            }),
        );
    }
}

#[cfg(test)]
mod tests;
