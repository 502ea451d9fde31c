//! Security groups and their ingress rules. Rules are read with their group (one call for
//! all) and matched by what they allow; a rule in an owned group that no node wants was added
//! out of band and is revoked.

use async_trait::async_trait;
use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, UserIdGroupPair};

use super::{
    created, owner, owner_filter, release_ec2, tag_spec, SECURITY_GROUP, SECURITY_GROUP_RULE,
};
use crate::aws::client::Effect;
use crate::aws::error::AwsError;
use crate::aws::Scope;
use crate::engine::{Handler, Kind, Observed, Observer, Resolved, Selector};

pub struct SecurityGroupObserver;

/// A rule's synthetic id: everything that identifies it.
fn rule_id(group: &str, protocol: &str, from: i64, to: i64, source: &str) -> String {
    format!("{group}|{protocol}|{from}|{to}|{source}")
}

#[async_trait]
impl Observer<Scope> for SecurityGroupObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[SECURITY_GROUP, SECURITY_GROUP_RULE]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let mut out = Vec::new();
        let found = crate::aws::pages(
            scope,
            "ec2",
            "DescribeSecurityGroups",
            |token| {
                scope
                    .ec2
                    .describe_security_groups()
                    .filters(owner_filter(selector))
                    .set_next_token(token)
                    .send()
            },
            DescribeSecurityGroupsOutput::next_token,
        )
        .await?;
        for page in found {
            for g in page.security_groups() {
                let Some((stack, role, uid)) = owner(g.tags()) else {
                    continue;
                };
                let group = g.group_id().unwrap_or_default();
                let vpc = g.vpc_id().unwrap_or_default();
                out.push(
                    Observed::new(SECURITY_GROUP, stack.clone(), role.clone(), group)
                        .owner(uid.clone())
                        .prop("vpc", vpc)
                        .prop("groupName", g.group_name().unwrap_or_default())
                        .prop("description", g.description().unwrap_or_default())
                        .refs([vpc.to_owned()]),
                );
                for p in g.ip_permissions() {
                    let protocol = p.ip_protocol().unwrap_or("-1");
                    let from = p.from_port().map(i64::from).unwrap_or(-1);
                    let to = p.to_port().map(i64::from).unwrap_or(-1);
                    let sources = p
                        .ip_ranges()
                        .iter()
                        .filter_map(|r| r.cidr_ip())
                        .chain(p.user_id_group_pairs().iter().filter_map(|u| u.group_id()));
                    for source in sources {
                        let mut refs = vec![group.to_owned()];
                        if source.starts_with("sg-") {
                            refs.push(source.to_owned());
                        }
                        out.push(
                            Observed::new(
                                SECURITY_GROUP_RULE,
                                stack.clone(),
                                format!("{role}-{from}-from-{source}"),
                                rule_id(group, protocol, from, to, source),
                            )
                            .owner(uid.clone())
                            .prop("group", group)
                            .prop("protocol", protocol)
                            .prop("fromPort", from)
                            .prop("toPort", to)
                            .prop("source", source)
                            .refs(refs),
                        );
                    }
                }
            }
        }
        Ok(out)
    }
}

pub struct GroupHandler;

#[async_trait]
impl Handler<Scope> for GroupHandler {
    fn kind(&self) -> Kind {
        SECURITY_GROUP
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let out = scope
            .api
            .call("ec2", "CreateSecurityGroup", Effect::Create, || {
                scope
                    .ec2
                    .create_security_group()
                    .vpc_id(node.req("vpc"))
                    .group_name(node.req("groupName"))
                    .description(node.req("description"))
                    .tag_specifications(tag_spec(scope, ResourceType::SecurityGroup, node))
                    .send()
            })
            .await?;
        Ok(created(scope, node, out.group_id().unwrap_or_default())
            .refs([node.req("vpc").to_owned()]))
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call("ec2", "DeleteSecurityGroup", Effect::Idempotent, || {
                scope
                    .ec2
                    .delete_security_group()
                    .group_id(&current.id)
                    .send()
            })
            .await
            .map(|_| ())
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        release_ec2(scope, resources).await
    }
}

/// The permission a rule stands for, as AWS takes it in Authorize and Revoke calls.
fn permission(protocol: &str, from: i64, to: i64, source: &str) -> IpPermission {
    let mut p = IpPermission::builder().ip_protocol(protocol);
    if protocol != "-1" {
        p = p.from_port(from as i32).to_port(to as i32);
    }
    if source.starts_with("sg-") {
        p.user_id_group_pairs(UserIdGroupPair::builder().group_id(source).build())
            .build()
    } else {
        p.ip_ranges(IpRange::builder().cidr_ip(source).build())
            .build()
    }
}

pub struct RuleHandler;

#[async_trait]
impl Handler<Scope> for RuleHandler {
    fn kind(&self) -> Kind {
        SECURITY_GROUP_RULE
    }

    fn identity(&self) -> &'static [&'static str] {
        &["group", "protocol", "fromPort", "toPort", "source"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let (group, protocol, source) =
            (node.req("group"), node.req("protocol"), node.req("source"));
        let (from, to) = (
            node.i64("fromPort").unwrap_or(-1),
            node.i64("toPort").unwrap_or(-1),
        );
        let result = scope
            .api
            .call(
                "ec2",
                "AuthorizeSecurityGroupIngress",
                Effect::Idempotent,
                || {
                    scope
                        .ec2
                        .authorize_security_group_ingress()
                        .group_id(group)
                        .ip_permissions(permission(protocol, from, to, source))
                        .tag_specifications(tag_spec(scope, ResourceType::SecurityGroupRule, node))
                        .send()
                },
            )
            .await;
        match result {
            // The rule exists already (an earlier attempt whose answer was lost): nothing to do.
            Err(e) if e.code == "InvalidPermission.Duplicate" => {}
            other => {
                other?;
            }
        }
        let mut refs = vec![group.to_owned()];
        if source.starts_with("sg-") {
            refs.push(source.to_owned());
        }
        Ok(created(scope, node, &rule_id(group, protocol, from, to, source)).refs(refs))
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        let s = |k: &str| current.str(k).unwrap_or_default().to_owned();
        let n = |k: &str| current.props.get(k).and_then(|v| v.as_i64()).unwrap_or(-1);
        let perm = permission(&s("protocol"), n("fromPort"), n("toPort"), &s("source"));
        let result = scope
            .api
            .call(
                "ec2",
                "RevokeSecurityGroupIngress",
                Effect::Idempotent,
                || {
                    scope
                        .ec2
                        .revoke_security_group_ingress()
                        .group_id(s("group"))
                        .ip_permissions(perm.clone())
                        .send()
                },
            )
            .await;
        match result {
            Err(e) if e.code == "InvalidPermission.NotFound" => Ok(()),
            other => other.map(|_| ()),
        }
    }
}
