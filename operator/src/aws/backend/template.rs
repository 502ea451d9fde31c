//! A tier's launch template. AWS versions templates: a change of the data is a new version,
//! made the default, whose number the Auto Scaling group then launches (and refreshes its
//! instances to). The data is compared by the digest recorded in a tag, so that observing a
//! template costs no read of its versions.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_ec2::operation::describe_launch_templates::DescribeLaunchTemplatesOutput;
use aws_sdk_ec2::types::{
    Filter, InstanceType, LaunchTemplate, LaunchTemplateBlockDeviceMappingRequest,
    LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType, Tag,
    VolumeType,
};
use serde_json::Value;

use super::{user_data, DIGEST_TAG, LAUNCH_TEMPLATE};
use crate::aws::client::Effect;
use crate::aws::error::{AwsError, OrAbsent};
use crate::aws::network::{owner, owner_filter, release_ec2, tag_spec};
use crate::aws::tags::{claim_taken, Tags};
use crate::aws::{created, pages, Scope};
use crate::engine::{digest, FieldChange, Handler, Kind, Observed, Observer, Resolved, Selector};

/// The root device of the Amazon Linux images.
const ROOT_DEVICE: &str = "/dev/xvda";

/// The template data AWS is sent for a resolved `data` property: IMDSv2 required, the root
/// volume encrypted, the boot script rendered from the data.
pub fn launch_data(scope: &Scope, node: &Resolved) -> RequestLaunchTemplateData {
    let data = node.props.get("data").cloned().unwrap_or(Value::Null);
    let str_of = |key: &str| data.get(key).and_then(Value::as_str).unwrap_or_default();
    let volume = &data["rootVolume"];
    let groups: Vec<String> = data["securityGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let instance_tags: Vec<Tag> = scope
        .tags(node)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let script = user_data(&data);
    RequestLaunchTemplateData::builder()
        .image_id(str_of("imageId"))
        .instance_type(InstanceType::from(str_of("instanceType")))
        .iam_instance_profile(
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                .arn(str_of("profile"))
                .build(),
        )
        .set_security_group_ids(Some(groups))
        .block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(ROOT_DEVICE)
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .volume_size(volume["sizeGib"].as_i64().unwrap_or(8) as i32)
                        .volume_type(VolumeType::from(volume["type"].as_str().unwrap_or("gp3")))
                        .encrypted(true)
                        // The stack's own key when it has one; AWS's otherwise.
                        .set_kms_key_id(Some(str_of("kmsKey").to_owned()).filter(|k| !k.is_empty()))
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_tokens(LaunchTemplateHttpTokensState::Required)
                .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                .http_put_response_hop_limit(2)
                .build(),
        )
        .set_key_name(data["keyPair"].as_str().map(str::to_owned))
        .user_data(aws_smithy_types::base64::encode(script.as_bytes()))
        .tag_specifications(
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(ResourceType::Instance)
                .set_tags(Some(instance_tags.clone()))
                .build(),
        )
        .tag_specifications(
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(ResourceType::Volume)
                .set_tags(Some(instance_tags))
                .build(),
        )
        .build()
}

fn data_digest(node: &Resolved) -> String {
    digest(node.props.get("data").unwrap_or(&Value::Null))
}

/// A template as observed; `recorded` is the digest of its data, when the listing's tags are
/// known to be stale.
fn observed(t: &LaunchTemplate, recorded: Option<&str>) -> Option<Observed> {
    let (stack, role, owner) = owner(t.tags())?;
    let recorded = recorded
        .or_else(|| {
            t.tags()
                .iter()
                .find(|tag| tag.key() == Some(DIGEST_TAG))
                .and_then(|tag| tag.value())
        })
        .unwrap_or_default();
    Some(
        Observed::new(
            LAUNCH_TEMPLATE,
            stack,
            role,
            t.launch_template_id().unwrap_or_default(),
        )
        .owner(owner)
        .prop("name", t.launch_template_name().unwrap_or_default())
        .prop("data", recorded)
        .prop("version", t.latest_version_number().unwrap_or(1)),
    )
}

/// The data digests of templates, from `DescribeTags` (one call for up to 200 templates): a
/// template's own listing may carry its tags as they were at creation.
async fn recorded_digests(
    scope: &Scope,
    templates: &[&LaunchTemplate],
) -> Result<HashMap<String, String>, AwsError> {
    let ids: Vec<String> = templates
        .iter()
        .filter_map(|t| t.launch_template_id().map(str::to_owned))
        .collect();
    let mut out = HashMap::new();
    for chunk in ids.chunks(200) {
        let read = scope
            .api
            .call("ec2", "DescribeTags", Effect::Read, || {
                scope
                    .ec2
                    .describe_tags()
                    .filters(
                        Filter::builder()
                            .name("resource-id")
                            .set_values(Some(chunk.to_vec()))
                            .build(),
                    )
                    .filters(Filter::builder().name("key").values(DIGEST_TAG).build())
                    .send()
            })
            .await?;
        for t in read.tags() {
            if let (Some(id), Some(v)) = (t.resource_id(), t.value()) {
                out.insert(id.to_owned(), v.to_owned());
            }
        }
    }
    Ok(out)
}

pub struct TemplateObserver;

#[async_trait]
impl Observer<Scope> for TemplateObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[LAUNCH_TEMPLATE]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let pages = pages(
            scope,
            "ec2",
            "DescribeLaunchTemplates",
            |token| {
                scope
                    .ec2
                    .describe_launch_templates()
                    .filters(owner_filter(selector))
                    .set_next_token(token)
                    .send()
            },
            DescribeLaunchTemplatesOutput::next_token,
        )
        .await?;
        let templates: Vec<&LaunchTemplate> =
            pages.iter().flat_map(|p| p.launch_templates()).collect();
        let digests = recorded_digests(scope, &templates).await?;
        Ok(templates
            .into_iter()
            .filter_map(|t| {
                let id = t.launch_template_id().unwrap_or_default();
                observed(t, digests.get(id).map(String::as_str))
            })
            .collect())
    }
}

pub struct TemplateHandler;

#[async_trait]
impl Handler<Scope> for TemplateHandler {
    fn kind(&self) -> Kind {
        LAUNCH_TEMPLATE
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["data"]
    }

    fn digested(&self) -> &'static [&'static str] {
        &["data"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let recorded = data_digest(node);
        let mut tags = tag_spec(scope, ResourceType::LaunchTemplate, node);
        tags.tags
            .get_or_insert_with(Vec::new)
            .push(Tag::builder().key(DIGEST_TAG).value(&recorded).build());
        let name = node.req("name");
        let made = scope
            .api
            .call("ec2", "CreateLaunchTemplate", Effect::Idempotent, || {
                scope
                    .ec2
                    .create_launch_template()
                    .launch_template_name(name)
                    .launch_template_data(launch_data(scope, node))
                    .tag_specifications(tags.clone())
                    .client_token(scope.token(node, ""))
                    .send()
            })
            .await;
        let template = match made {
            Ok(out) => out.launch_template().cloned(),
            // The name is the stack's: a create whose answer was lost. Take it if its tags
            // say it is this owner's.
            Err(e) if e.code.contains("AlreadyExists") => {
                let found = scope
                    .api
                    .call("ec2", "DescribeLaunchTemplates", Effect::Read, || {
                        scope
                            .ec2
                            .describe_launch_templates()
                            .launch_template_names(name)
                            .send()
                    })
                    .await?;
                let t = found.launch_templates().first().cloned();
                let tags: Option<Tags> = t.as_ref().map(|t| {
                    t.tags()
                        .iter()
                        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                        .collect()
                });
                claim_taken(
                    scope,
                    tags.as_ref(),
                    &e,
                    &format!("the launch template {name}"),
                )?;
                t
            }
            Err(e) => return Err(e),
        };
        let template = template.unwrap_or_else(|| LaunchTemplate::builder().build());
        Ok(created(
            scope,
            node,
            template.launch_template_id().unwrap_or_default(),
        )
        .prop("data", recorded)
        .prop("version", template.latest_version_number().unwrap_or(1)))
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        current: &Observed,
        _changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        let recorded = data_digest(node);
        let out = scope
            .api
            .call(
                "ec2",
                "CreateLaunchTemplateVersion",
                Effect::Idempotent,
                || {
                    scope
                        .ec2
                        .create_launch_template_version()
                        .launch_template_id(&current.id)
                        .launch_template_data(launch_data(scope, node))
                        .client_token(scope.token(node, "version"))
                        .send()
                },
            )
            .await?;
        let version = out
            .launch_template_version()
            .and_then(|v| v.version_number())
            .unwrap_or(1);
        scope
            .api
            .call("ec2", "ModifyLaunchTemplate", Effect::Idempotent, || {
                scope
                    .ec2
                    .modify_launch_template()
                    .launch_template_id(&current.id)
                    .default_version(version.to_string())
                    .send()
            })
            .await?;
        scope
            .api
            .call("ec2", "CreateTags", Effect::Idempotent, || {
                scope
                    .ec2
                    .create_tags()
                    .resources(&current.id)
                    .tags(Tag::builder().key(DIGEST_TAG).value(&recorded).build())
                    .send()
            })
            .await?;
        let mut after = current.clone();
        after.props.insert("data".into(), recorded.into());
        after.props.insert("version".into(), version.into());
        Ok(Some(after))
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call("ec2", "DeleteLaunchTemplate", Effect::Idempotent, || {
                scope
                    .ec2
                    .delete_launch_template()
                    .launch_template_id(&current.id)
                    .send()
            })
            .await
            .or_absent()
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        release_ec2(scope, resources).await
    }
}
