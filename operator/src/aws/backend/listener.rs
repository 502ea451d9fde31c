//! A load balancer's listeners: HTTP forwarding to the tier's target group, or HTTP
//! redirecting to HTTPS with an HTTPS listener serving the tier's certificate. A listener is
//! identified by its load balancer and port; it belongs to whoever owns the load balancer.

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, Listener, ProtocolEnum, RedirectActionConfig,
    RedirectActionStatusCodeEnum,
};
use serde_json::{json, Value};

use super::balancer::SERVICE;
use super::LISTENER;
use crate::aws::client::Effect;
use crate::aws::error::{AwsError, OrAbsent};
use crate::aws::{created, Scope};
use crate::engine::{FieldChange, Handler, Kind, Observed, Resolved};

/// The listeners of the stack's load balancers: one `DescribeListeners` per load balancer
/// (ELBv2 lists listeners of one load balancer at a time).
pub(super) async fn observe(
    scope: &Scope,
    balancers: &[Observed],
) -> Result<Vec<Observed>, AwsError> {
    let mut out = Vec::new();
    for lb in balancers {
        let read = scope
            .api
            .call(SERVICE, "DescribeListeners", Effect::Read, || {
                scope
                    .elb
                    .describe_listeners()
                    .load_balancer_arn(&lb.id)
                    .send()
            })
            .await;
        let listeners = match read {
            Ok(r) => r.listeners().to_vec(),
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        out.extend(listeners.iter().map(|l| observed(l, lb)));
    }
    Ok(out)
}

fn observed(l: &Listener, lb: &Observed) -> Observed {
    let port = l.port().unwrap_or(0);
    let action = l
        .default_actions()
        .first()
        .map(action_value)
        .unwrap_or(Value::Null);
    let mut o = Observed::new(
        LISTENER,
        lb.stack.clone(),
        format!("{}-{port}", lb.role),
        l.listener_arn().unwrap_or_default(),
    )
    .owner(lb.owner.clone())
    .prop("loadBalancer", lb.id.as_str())
    .prop("port", port)
    .prop(
        "protocol",
        l.protocol().map(|p| p.as_str()).unwrap_or_default(),
    )
    .prop("action", action.clone())
    .refs([lb.id.clone()]);
    if let Some(tg) = action["targetGroup"].as_str() {
        o = o.refs([tg.to_owned()]);
    }
    if let Some(cert) = l.certificates().first().and_then(|c| c.certificate_arn()) {
        o = o.prop("certificate", cert).refs([cert.to_owned()]);
    }
    if let Some(policy) = l.ssl_policy() {
        o = o.prop("sslPolicy", policy);
    }
    o
}

fn action_value(a: &Action) -> Value {
    match a.r#type() {
        Some(ActionTypeEnum::Redirect) => {
            let r = a.redirect_config();
            json!({
                "type": "redirect",
                "protocol": r.and_then(|r| r.protocol()).unwrap_or_default(),
                "port": r.and_then(|r| r.port()).unwrap_or_default(),
            })
        }
        _ => json!({
            "type": "forward",
            "targetGroup": a.target_group_arn().unwrap_or_default(),
        }),
    }
}

/// The action AWS is sent for a resolved `action` property.
pub fn action(v: &Value) -> Action {
    match v["type"].as_str() {
        Some("redirect") => Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol(v["protocol"].as_str().unwrap_or("HTTPS"))
                    .port(v["port"].as_str().unwrap_or("443"))
                    .status_code(RedirectActionStatusCodeEnum::Http301)
                    .build(),
            )
            .build(),
        _ => Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(v["targetGroup"].as_str().unwrap_or_default())
            .build(),
    }
}

fn certificates(node: &Resolved) -> Option<Vec<Certificate>> {
    node.str("certificate")
        .map(|arn| vec![Certificate::builder().certificate_arn(arn).build()])
}

pub struct ListenerHandler;

#[async_trait]
impl Handler<Scope> for ListenerHandler {
    fn kind(&self) -> Kind {
        LISTENER
    }

    fn identity(&self) -> &'static [&'static str] {
        &["loadBalancer", "port"]
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["protocol", "action", "certificate", "sslPolicy"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let value = node.props.get("action").cloned().unwrap_or(Value::Null);
        let made = scope
            .api
            .call(SERVICE, "CreateListener", Effect::Idempotent, || {
                scope
                    .elb
                    .create_listener()
                    .load_balancer_arn(node.req("loadBalancer"))
                    .port(node.i64("port").unwrap_or(80) as i32)
                    .protocol(ProtocolEnum::from(node.req("protocol")))
                    .default_actions(action(&value))
                    .set_certificates(certificates(node))
                    .set_ssl_policy(node.str("sslPolicy").map(str::to_owned))
                    .send()
            })
            .await?;
        let arn = made
            .listeners()
            .first()
            .and_then(|l| l.listener_arn())
            .unwrap_or_default();
        let mut refs = vec![node.req("loadBalancer").to_owned()];
        refs.extend(value["targetGroup"].as_str().map(str::to_owned));
        refs.extend(node.str("certificate").map(str::to_owned));
        Ok(created(scope, node, arn).refs(refs))
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        current: &Observed,
        _changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        let value = node.props.get("action").cloned().unwrap_or(Value::Null);
        scope
            .api
            .call(SERVICE, "ModifyListener", Effect::Idempotent, || {
                scope
                    .elb
                    .modify_listener()
                    .listener_arn(&current.id)
                    .protocol(ProtocolEnum::from(node.req("protocol")))
                    .default_actions(action(&value))
                    .set_certificates(certificates(node))
                    .set_ssl_policy(node.str("sslPolicy").map(str::to_owned))
                    .send()
            })
            .await
            .map(|_| None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call(SERVICE, "DeleteListener", Effect::Idempotent, || {
                scope.elb.delete_listener().listener_arn(&current.id).send()
            })
            .await
            .or_absent()
    }
}
