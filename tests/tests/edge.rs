//! The edge tier against the emulator, checked through AWS's own Get and List calls: private
//! buckets readable by the stack's distribution alone, the distribution's origins and ordered
//! behaviours, certificates in us-east-1, the hosted zone and its alias records; re-apply
//! writes nothing; drift is found and undone; destroy leaves nothing.

use std::time::Duration;

use serde_json::{json, Value};
use webstack::engine::Silent;
use webstack::stack;
use webstack_tests::*;

const TIMEOUT: Duration = Duration::from_secs(300);

fn condition(status: &webstack::api::WebStackStatus, type_: &str) -> String {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
        .unwrap_or_else(|| panic!("no {type_} in {:?}", status.conditions))
}

/// The stack's buckets by the role in their component tag.
async fn buckets(s3: &aws_sdk_s3::Client, stack: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for b in s3.list_buckets().send().await.unwrap().buckets() {
        let name = b.name().unwrap().to_owned();
        let Ok(tags) = s3.get_bucket_tagging().bucket(&name).send().await else {
            continue;
        };
        let tag = |k: &str| {
            tags.tag_set()
                .iter()
                .find(|t| t.key() == k)
                .map(|t| t.value().to_owned())
        };
        if tag("webstack.io/stack").as_deref() == Some(stack) {
            let component = tag("webstack.io/component").unwrap_or_default();
            out.push((component, name));
        }
    }
    out.sort();
    out
}

async fn distributions(
    cf: &aws_sdk_cloudfront::Client,
) -> Vec<aws_sdk_cloudfront::types::DistributionSummary> {
    cf.list_distributions()
        .send()
        .await
        .unwrap()
        .distribution_list()
        .map(|l| l.items().to_vec())
        .unwrap_or_default()
}

/// Reference 000: the React build and the uploads in private buckets, both served by the
/// stack's distribution (the API under `/api/*`, uncached), readable by it alone; versioned,
/// encrypted, old versions expiring; re-apply writes nothing; a bucket holding objects stops
/// the destroy and names the field that lets them go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_000_buckets_are_private_and_served_by_the_stacks_distribution_alone() {
    let moto = Moto::start();
    let (connect, api) = connect(&moto.url());
    let region = "eu-central-1";
    let config = sdk_config(&moto.url(), region).await;
    let s3 = aws_sdk_s3::Client::new(&config);
    let cf = aws_sdk_cloudfront::Client::new(&sdk_config(&moto.url(), "us-east-1").await);

    let ws = example("multi-az-mysql.yaml", "mysql");
    let p = stack::prepare_with(ws.clone(), &connect, example_secrets())
        .await
        .unwrap();
    let outcome = p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let status = p.status(&outcome, None);
    assert_eq!(condition(&status, "Ready"), "True", "{status:?}");
    assert_eq!(condition(&status, "FrontendReady"), "True");
    assert_eq!(condition(&status, "StorageReady"), "True");
    assert_eq!(condition(&status, "CdnReady"), "True");

    let found = buckets(&s3, "default/mysql").await;
    assert_eq!(
        found.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        ["frontend/frontend", "storage/data-uploads"]
    );
    let dists = distributions(&cf).await;
    assert_eq!(dists.len(), 1);
    let d = &dists[0];
    for (_, name) in &found {
        let block = s3
            .get_public_access_block()
            .bucket(name)
            .send()
            .await
            .unwrap();
        let c = block.public_access_block_configuration().unwrap();
        assert_eq!(
            (
                c.block_public_acls(),
                c.ignore_public_acls(),
                c.block_public_policy(),
                c.restrict_public_buckets()
            ),
            (Some(true), Some(true), Some(true), Some(true)),
            "{name}"
        );
        let ownership = s3
            .get_bucket_ownership_controls()
            .bucket(name)
            .send()
            .await
            .unwrap();
        assert_eq!(
            ownership.ownership_controls().unwrap().rules()[0]
                .object_ownership()
                .as_str(),
            "BucketOwnerEnforced"
        );
        let versioning = s3
            .get_bucket_versioning()
            .bucket(name)
            .send()
            .await
            .unwrap();
        assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
        let encryption = s3
            .get_bucket_encryption()
            .bucket(name)
            .send()
            .await
            .unwrap();
        let rule = &encryption
            .server_side_encryption_configuration()
            .unwrap()
            .rules()[0];
        assert_eq!(
            rule.apply_server_side_encryption_by_default()
                .unwrap()
                .sse_algorithm()
                .as_str(),
            "AES256"
        );
        let lifecycle = s3
            .get_bucket_lifecycle_configuration()
            .bucket(name)
            .send()
            .await
            .unwrap();
        let rule = &lifecycle.rules()[0];
        assert_eq!(
            rule.abort_incomplete_multipart_upload()
                .and_then(|a| a.days_after_initiation()),
            Some(7)
        );
        // The policy: plain HTTP refused; reads by this distribution and nobody else.
        let policy: Value = serde_json::from_str(
            s3.get_bucket_policy()
                .bucket(name)
                .send()
                .await
                .unwrap()
                .policy()
                .unwrap(),
        )
        .unwrap();
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(statements[0]["Effect"], "Deny");
        assert_eq!(
            statements[0]["Condition"]["Bool"]["aws:SecureTransport"],
            "false"
        );
        let allows: Vec<&Value> = statements
            .iter()
            .filter(|s| s["Effect"] == "Allow")
            .collect();
        assert_eq!(allows.len(), 1, "{policy}");
        assert_eq!(
            allows[0]["Principal"],
            json!({"Service": "cloudfront.amazonaws.com"})
        );
        assert_eq!(allows[0]["Action"], "s3:GetObject");
        assert_eq!(allows[0]["Resource"], format!("arn:aws:s3:::{name}/*"));
        assert_eq!(
            allows[0]["Condition"]["StringEquals"]["AWS:SourceArn"],
            d.arn()
        );
    }
    let site = &found[0].1;
    let lifecycle = s3
        .get_bucket_lifecycle_configuration()
        .bucket(site)
        .send()
        .await
        .unwrap();
    assert_eq!(
        lifecycle.rules()[0]
            .noncurrent_version_expiration()
            .and_then(|n| n.noncurrent_days()),
        Some(30)
    );

    // The distribution: the site for everything, the API uncached under /api/*, the uploads
    // under /uploads/*, in the spec's order; HTTPS only; the SPA's routes answered with its
    // index page.
    let config = cf
        .get_distribution_config()
        .id(d.id())
        .send()
        .await
        .unwrap()
        .distribution_config()
        .unwrap()
        .clone();
    let origins = config.origins().unwrap().items();
    assert_eq!(origins.len(), 3);
    let origin = |id: &str| origins.iter().find(|o| o.id() == id).unwrap().clone();
    assert_eq!(
        origin("bucket-frontend").domain_name(),
        format!("{site}.s3.{region}.amazonaws.com")
    );
    let lb = &status.outputs.as_ref().unwrap().tiers["api"].load_balancer_dns;
    assert_eq!(origin("tier-api").domain_name(), lb);
    let default = config.default_cache_behavior().unwrap();
    assert_eq!(default.target_origin_id(), "bucket-frontend");
    assert_eq!(
        default.viewer_protocol_policy().as_str(),
        "redirect-to-https"
    );
    let behaviors = config.cache_behaviors().unwrap().items();
    let paths: Vec<(&str, &str)> = behaviors
        .iter()
        .map(|b| (b.path_pattern(), b.target_origin_id()))
        .collect();
    assert_eq!(
        paths,
        [
            ("/api/*", "tier-api"),
            ("/uploads/*", "bucket-data-uploads")
        ]
    );
    assert_eq!(
        behaviors[0].cache_policy_id(),
        Some(webstack::aws::cdn::config::CACHING_DISABLED)
    );
    assert!(behaviors[0]
        .allowed_methods()
        .unwrap()
        .items()
        .contains(&aws_sdk_cloudfront::types::Method::Post));
    assert_eq!(config.default_root_object(), Some("index.html"));
    let errors: Vec<(i32, Option<&str>, Option<&str>)> = config
        .custom_error_responses()
        .unwrap()
        .items()
        .iter()
        .map(|e| (e.error_code(), e.response_code(), e.response_page_path()))
        .collect();
    assert_eq!(
        errors,
        [
            (403, Some("200"), Some("/index.html")),
            (404, Some("200"), Some("/index.html"))
        ]
    );

    // The plan is empty; re-apply writes nothing.
    let plan = p.plan().await.unwrap();
    assert!(plan.is_empty(), "{:#?}", plan.changes);
    let before = api.counts();
    let again = p.apply_once(&Silent).await.unwrap();
    assert!(again.is_ready());
    let writes = api.counts().difference(&before).mutating();
    assert!(writes.is_empty(), "re-apply wrote: {writes:?}");

    // A site that holds objects: destroy stops at its bucket and says how to let them go.
    // (The emulator speaks plain HTTP and applies the policy's refusal of it to object
    // writes: the object is written with the policy set aside.)
    s3.delete_bucket_policy().bucket(site).send().await.unwrap();
    s3.put_object()
        .bucket(site)
        .key("index.html")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"<html></html>",
        ))
        .send()
        .await
        .unwrap();
    let stopped = p.destroy_until_gone(TIMEOUT, &Silent).await.unwrap();
    let failure = stopped
        .failures
        .iter()
        .find(|f| f.id == *site)
        .unwrap_or_else(|| panic!("{:?}", stopped.failures));
    assert!(!failure.retryable);
    assert!(
        failure.error.contains("spec.frontend.s3.deleteObjects"),
        "{}",
        failure.error
    );
    assert!(s3.head_bucket().bucket(site).send().await.is_ok());
    assert!(
        distributions(&cf).await.is_empty(),
        "the distribution went before its origins"
    );

    let mut letting_go = ws.clone();
    letting_go
        .spec
        .frontend
        .as_mut()
        .unwrap()
        .s3
        .as_mut()
        .unwrap()
        .delete_objects = true;
    letting_go
        .spec
        .database
        .as_mut()
        .unwrap()
        .rds
        .as_mut()
        .unwrap()
        .deletion_protection = false;
    let p = stack::prepare_with(letting_go, &connect, example_secrets())
        .await
        .unwrap();
    // The spec's word is recorded with the bucket first (a destroy by tags reads it there).
    p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let done = p.destroy_until_gone(TIMEOUT, &Silent).await.unwrap();
    assert!(done.failures.is_empty(), "{:?}", done.failures);
    assert!(buckets(&s3, "default/mysql").await.is_empty());
    assert!(distributions(&cf).await.is_empty());
}

/// The stack's hosted zones, by name, with their ids.
async fn zones(r53: &aws_sdk_route53::Client) -> Vec<(String, String)> {
    r53.list_hosted_zones()
        .send()
        .await
        .unwrap()
        .hosted_zones()
        .iter()
        .map(|z| {
            (
                z.name().to_owned(),
                z.id().trim_start_matches("/hostedzone/").to_owned(),
            )
        })
        .collect()
}

/// A zone's records as (name, type, alias target or values).
async fn records(r53: &aws_sdk_route53::Client, zone: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap()
        .resource_record_sets()
        .iter()
        .map(|s| {
            let target = match s.alias_target() {
                Some(a) => a.dns_name().trim_end_matches('.').to_owned(),
                None => s
                    .resource_records()
                    .iter()
                    .map(|r| r.value().to_owned())
                    .collect::<Vec<_>>()
                    .join(","),
            };
            (s.name().to_owned(), s.r#type().as_str().to_owned(), target)
        })
        .collect();
    out.sort();
    out
}

/// Reference 003 (tekamolo.info): one distribution with the site's bucket for `/*` and the
/// load balancer for `/api/*` (uncached, every method), the apex and `www` as aliases with the
/// certificate that covers them, a zone of the stack's own with the apex and `www` pointing at
/// the distribution and the certificate's validation records; re-apply writes nothing; drift
/// out of band is planned and undone; destroy leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_003_is_served_through_its_distribution_under_its_own_names() {
    let moto = Moto::start();
    let (connect, api) = connect(&moto.url());
    let config = sdk_config(&moto.url(), "us-east-1").await;
    let s3 = aws_sdk_s3::Client::new(&config);
    let cf = aws_sdk_cloudfront::Client::new(&config);
    let r53 = aws_sdk_route53::Client::new(&config);
    let acm = aws_sdk_acm::Client::new(&config);

    let ws = example("tekamolo.yaml", "tekamolo");
    let p = stack::prepare_with(ws.clone(), &connect, example_secrets())
        .await
        .unwrap();
    let outcome = p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let status = p.status(&outcome, None);
    assert_eq!(condition(&status, "Ready"), "True", "{status:?}");
    for tier in ["FrontendReady", "CdnReady", "DnsReady", "CertificatesReady"] {
        assert_eq!(condition(&status, tier), "True", "{tier}");
    }

    let dists = distributions(&cf).await;
    assert_eq!(dists.len(), 1);
    let d = &dists[0];
    let config = cf
        .get_distribution_config()
        .id(d.id())
        .send()
        .await
        .unwrap()
        .distribution_config()
        .unwrap()
        .clone();
    let origins = config.origins().unwrap().items();
    assert_eq!(origins.len(), 2);
    let lb = &status.outputs.as_ref().unwrap().tiers["api"].load_balancer_dns;
    let api_origin = origins.iter().find(|o| o.id() == "tier-api").unwrap();
    assert_eq!(api_origin.domain_name(), lb);
    // The load balancer serves the same certificate: CloudFront reaches it over HTTPS.
    assert_eq!(
        api_origin
            .custom_origin_config()
            .map(|c| c.origin_protocol_policy().as_str()),
        Some("https-only")
    );
    let behaviors = config.cache_behaviors().unwrap().items();
    assert_eq!(behaviors.len(), 1);
    assert_eq!(behaviors[0].path_pattern(), "/api/*");
    assert_eq!(behaviors[0].target_origin_id(), "tier-api");
    assert_eq!(
        behaviors[0].cache_policy_id(),
        Some(webstack::aws::cdn::config::CACHING_DISABLED)
    );
    let mut aliases = config.aliases().unwrap().items().to_vec();
    aliases.sort();
    assert_eq!(aliases, ["tekamolo.info", "www.tekamolo.info"]);
    let certificates = acm.list_certificates().send().await.unwrap();
    let cert = certificates
        .certificate_summary_list()
        .iter()
        .find(|c| c.domain_name() == Some("tekamolo.info"))
        .expect("the certificate");
    assert_eq!(
        certificates.certificate_summary_list().len(),
        1,
        "one certificate serves both"
    );
    assert_eq!(
        config.viewer_certificate().unwrap().acm_certificate_arn(),
        cert.certificate_arn()
    );

    // The zone: apex and www, IPv4 and IPv6, at the distribution; the validation records.
    let found = zones(&r53).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "tekamolo.info.");
    let zone = found[0].1.clone();
    let held = records(&r53, &zone).await;
    for name in ["tekamolo.info.", "www.tekamolo.info."] {
        for t in ["A", "AAAA"] {
            assert!(
                held.contains(&(name.to_owned(), t.to_owned(), d.domain_name().to_owned())),
                "{name} {t}: {held:?}"
            );
        }
    }
    let detail = acm
        .describe_certificate()
        .certificate_arn(cert.certificate_arn().unwrap())
        .send()
        .await
        .unwrap();
    for option in detail.certificate().unwrap().domain_validation_options() {
        let r = option.resource_record().unwrap();
        assert!(
            held.contains(&(
                r.name().to_owned(),
                "CNAME".to_owned(),
                r.value().to_owned()
            )),
            "{r:?} in {held:?}"
        );
    }
    let servers = status
        .outputs
        .as_ref()
        .and_then(|o| o.dns.as_ref())
        .map(|d| d.name_servers.clone())
        .unwrap_or_default();
    assert!(
        !servers.is_empty(),
        "the zone's name servers are in the status"
    );

    // The plan is empty; re-apply writes nothing.
    let plan = p.plan().await.unwrap();
    assert!(plan.is_empty(), "{:#?}", plan.changes);
    let before = api.counts();
    assert!(p.apply_once(&Silent).await.unwrap().is_ready());
    let writes = api.counts().difference(&before).mutating();
    assert!(writes.is_empty(), "re-apply wrote: {writes:?}");

    // Drift: the /api/* behaviour removed, the www record pointed elsewhere, the site's
    // versioning suspended. The plan names each; the next apply undoes them.
    let (current, etag) = {
        let r = cf
            .get_distribution_config()
            .id(d.id())
            .send()
            .await
            .unwrap();
        (
            r.distribution_config().unwrap().clone(),
            r.e_tag().unwrap().to_owned(),
        )
    };
    let mut stripped = current.clone();
    stripped.cache_behaviors = Some(
        aws_sdk_cloudfront::types::CacheBehaviors::builder()
            .quantity(0)
            .build()
            .unwrap(),
    );
    cf.update_distribution()
        .id(d.id())
        .if_match(etag)
        .distribution_config(stripped)
        .send()
        .await
        .unwrap();
    let elsewhere = aws_sdk_route53::types::ResourceRecordSet::builder()
        .name("www.tekamolo.info.")
        .r#type(aws_sdk_route53::types::RrType::A)
        .alias_target(
            aws_sdk_route53::types::AliasTarget::builder()
                .dns_name("elsewhere.cloudfront.net")
                .hosted_zone_id(webstack::aws::dns::CLOUDFRONT_ZONE)
                .evaluate_target_health(false)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    r53.change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(
            aws_sdk_route53::types::ChangeBatch::builder()
                .changes(
                    aws_sdk_route53::types::Change::builder()
                        .action(aws_sdk_route53::types::ChangeAction::Upsert)
                        .resource_record_set(elsewhere)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let site = buckets(&s3, "default/tekamolo").await[0].1.clone();
    s3.put_bucket_versioning()
        .bucket(&site)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let plan = p.plan().await.unwrap();
    let mut drifted: Vec<(String, String, Vec<String>)> = plan
        .changes
        .iter()
        .map(|c| {
            (
                c.kind.to_string(),
                c.role.clone(),
                c.changes.iter().map(|f| f.field.clone()).collect(),
            )
        })
        .collect();
    drifted.sort();
    assert_eq!(
        drifted,
        [
            (
                "Bucket".to_owned(),
                "frontend".to_owned(),
                vec!["versioning".to_owned()]
            ),
            (
                "Distribution".to_owned(),
                "cdn".to_owned(),
                vec!["behaviors".to_owned()]
            ),
            (
                "DnsRecord".to_owned(),
                "www-a".to_owned(),
                vec!["alias".to_owned()]
            ),
        ]
    );
    assert!(p
        .apply_until_ready(TIMEOUT, &Silent)
        .await
        .unwrap()
        .is_ready());
    assert!(p.plan().await.unwrap().is_empty());
    let restored = cf
        .get_distribution_config()
        .id(d.id())
        .send()
        .await
        .unwrap();
    assert_eq!(
        restored
            .distribution_config()
            .unwrap()
            .cache_behaviors()
            .unwrap()
            .items()[0]
            .path_pattern(),
        "/api/*"
    );
    assert!(records(&r53, &zone).await.contains(&(
        "www.tekamolo.info.".to_owned(),
        "A".to_owned(),
        d.domain_name().to_owned()
    )));
    let versioning = s3
        .get_bucket_versioning()
        .bucket(&site)
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));

    // Destroy: nothing of the edge is left.
    let done = p.destroy_until_gone(TIMEOUT, &Silent).await.unwrap();
    assert!(done.failures.is_empty(), "{:?}", done.failures);
    assert!(distributions(&cf).await.is_empty());
    assert!(zones(&r53).await.is_empty());
    assert!(buckets(&s3, "default/tekamolo").await.is_empty());
    assert!(acm
        .list_certificates()
        .send()
        .await
        .unwrap()
        .certificate_summary_list()
        .is_empty());
}

/// Everything of a stack in its region and in us-east-1, as the emulator reports it.
async fn everything(
    endpoint: &str,
    region: &str,
) -> std::collections::BTreeMap<&'static str, usize> {
    let mut all = census(&ec2(endpoint, region).await).await;
    all.extend(backend_census(endpoint, region).await);
    all.extend(edge_census(endpoint, region).await);
    all
}

/// An example as a user who means to delete it later declares it: the database without
/// deletion protection or a final snapshot, the site's objects going with it.
fn deletable(file: &str, name: &str) -> webstack::api::WebStack {
    let mut s = example(file, name);
    if let Some(rds) = s.spec.database.as_mut().and_then(|d| d.rds.as_mut()) {
        rds.deletion_protection = false;
        rds.final_snapshot = false;
    }
    if let Some(site) = s.spec.frontend.as_mut().and_then(|f| f.s3.as_mut()) {
        site.delete_objects = true;
    }
    s
}

/// Acceptance of the edge tier for the four reference examples: each reaches Ready with every
/// tier built, is served through its distribution as its document says, plans no change and
/// writes nothing when applied again, and leaves nothing behind when destroyed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_four_reference_examples_are_ready_stable_and_leave_nothing() {
    for (file, region) in [
        ("starttech.yaml", "eu-west-1"),
        ("multi-az-mysql.yaml", "eu-central-1"),
        ("stockholm-two-tier.yaml", "eu-north-1"),
        ("tekamolo.yaml", "us-east-1"),
    ] {
        Box::pin(reference_example(file, region)).await;
    }
}

async fn reference_example(file: &str, region: &str) {
    let moto = Moto::start();
    let (connect, api) = connect(&moto.url());
    let ws = deletable(file, "ref");
    if let Some(dns) = ws.spec.dns.as_ref().filter(|d| !d.create_zone) {
        public_zone(&moto.url(), &dns.zone).await;
    }
    let pristine = everything(&moto.url(), region).await;
    let p = stack::prepare_with(ws.clone(), &connect, example_secrets())
        .await
        .unwrap();
    let outcome = p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let status = p.status(&outcome, None);
    assert_eq!(condition(&status, "Ready"), "True", "{file}: {status:?}");
    assert!(
        status.conditions.iter().all(|c| c.status == "True"),
        "{file}: {:?}",
        status.conditions
    );
    let outputs = status.outputs.clone().unwrap();
    let cdn = outputs.cdn.clone().expect("a distribution");
    let url = outputs.url.clone().unwrap();
    let aliases = &ws.spec.cdn.as_ref().unwrap().aliases;
    match aliases.first() {
        Some(a) => assert_eq!(url, format!("https://{a}"), "{file}"),
        None => assert_eq!(url, format!("https://{}", cdn.domain_name), "{file}"),
    }

    // The distribution as the document draws it.
    let cf = aws_sdk_cloudfront::Client::new(&sdk_config(&moto.url(), "us-east-1").await);
    let config = cf
        .get_distribution_config()
        .id(&cdn.distribution_id)
        .send()
        .await
        .unwrap()
        .distribution_config()
        .unwrap()
        .clone();
    let default = config
        .default_cache_behavior()
        .unwrap()
        .target_origin_id()
        .to_owned();
    let paths: Vec<(String, String)> = config
        .cache_behaviors()
        .map(|b| b.items().to_vec())
        .unwrap_or_default()
        .iter()
        .map(|b| (b.path_pattern().to_owned(), b.target_origin_id().to_owned()))
        .collect();
    let expected: (&str, Vec<(&str, &str)>) = match file {
        "starttech.yaml" => ("bucket-frontend", vec![("/api/*", "tier-api")]),
        "multi-az-mysql.yaml" => (
            "bucket-frontend",
            vec![
                ("/api/*", "tier-api"),
                ("/uploads/*", "bucket-data-uploads"),
            ],
        ),
        "stockholm-two-tier.yaml" => ("tier-web", vec![]),
        _ => ("bucket-frontend", vec![("/api/*", "tier-api")]),
    };
    assert_eq!(default, expected.0, "{file}");
    let expected_paths: Vec<(String, String)> = expected
        .1
        .iter()
        .map(|(p, o)| (p.to_string(), o.to_string()))
        .collect();
    assert_eq!(paths, expected_paths, "{file}");
    if file == "stockholm-two-tier.yaml" {
        // Reference 001: the certificate CloudFront serves is in us-east-1, the load
        // balancer's in Stockholm; the records are in the domain's existing zone; the CDN's
        // alarm is in us-east-1, on the distribution.
        let global_acm = aws_sdk_acm::Client::new(&sdk_config(&moto.url(), "us-east-1").await);
        let arn = config
            .viewer_certificate()
            .unwrap()
            .acm_certificate_arn()
            .unwrap()
            .to_owned();
        assert!(arn.contains(":us-east-1:"), "{arn}");
        assert_eq!(
            global_acm
                .list_certificates()
                .send()
                .await
                .unwrap()
                .certificate_summary_list()
                .len(),
            1
        );
        let cw = aws_sdk_cloudwatch::Client::new(&sdk_config(&moto.url(), "us-east-1").await);
        let alarms = cw.describe_alarms().send().await.unwrap();
        let a = &alarms.metric_alarms()[0];
        assert_eq!(a.metric_name(), Some("5xxErrorRate"));
        let dims: Vec<(&str, &str)> = a
            .dimensions()
            .iter()
            .map(|d| (d.name().unwrap(), d.value().unwrap()))
            .collect();
        assert!(
            dims.contains(&("DistributionId", cdn.distribution_id.as_str())),
            "{dims:?}"
        );
        assert!(dims.contains(&("Region", "Global")));
        let r53 = aws_sdk_route53::Client::new(&sdk_config(&moto.url(), "us-east-1").await);
        let zone = zones(&r53).await[0].1.clone();
        let held = records(&r53, &zone).await;
        for name in ["example.com.", "www.example.com."] {
            assert!(
                held.contains(&(name.into(), "A".into(), cdn.domain_name.clone())),
                "{held:?}"
            );
        }
        assert_eq!(outputs.dns.as_ref().map(|d| d.zone_id.clone()), Some(zone));
    }

    // Nothing to change, nothing written.
    let plan = p.plan().await.unwrap();
    assert!(plan.is_empty(), "{file}: {:#?}", plan.changes);
    let before = api.counts();
    assert!(p.apply_once(&Silent).await.unwrap().is_ready());
    let writes = api.counts().difference(&before).mutating();
    assert!(writes.is_empty(), "{file}: re-apply wrote {writes:?}");

    // Destroy: the account is as it was.
    let done = p.destroy_until_gone(TIMEOUT, &Silent).await.unwrap();
    assert!(done.is_complete(), "{file}: {:?}", done.failures);
    assert_eq!(everything(&moto.url(), region).await, pristine, "{file}");
}

/// Crash points per run: every one would not fit in CI; successive runs cover them all.
const CRASH_POINTS: u64 = 20;

/// Reference 003 killed right after a mutating call, at an even sample of the
/// calls of a clean apply: the next apply converges to exactly what a clean apply makes (one
/// distribution, certificate, zone, bucket and load balancer, never two); and killed after
/// each sampled call of a destroy, the next destroy leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_anywhere_in_tekamolo_neither_duplicates_nor_leaks() {
    use webstack::aws::client::{CRASH_AFTER_MUTATIONS_ENV, CRASH_EXIT_CODE};
    let moto = Moto::start();
    let region = "us-east-1";
    let file =
        TempManifest::new(&serde_yaml::to_string(&deletable("tekamolo.yaml", "crashy")).unwrap());
    let run = |command: &str, k: Option<u64>| {
        let k = k.map(|k| k.to_string());
        let env: Vec<(&str, &str)> = k
            .iter()
            .map(|k| (CRASH_AFTER_MUTATIONS_ENV, k.as_str()))
            .collect();
        run_cli(
            &moto.url(),
            &[command, "-f", file.path(), "--show-calls"],
            &env,
        )
    };
    let succeeded = |out: &std::process::Output, what: &str| {
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let crashed = |out: &std::process::Output, what: &str| {
        assert_eq!(
            out.status.code(),
            Some(CRASH_EXIT_CODE),
            "{what} was to stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let pristine = everything(&moto.url(), region).await;
    let clean = run("apply", None);
    succeeded(&clean, "clean apply");
    let total = mutating_calls(&clean);
    let reference = everything(&moto.url(), region).await;
    for (what, n) in [
        ("distributions", 1),
        ("certificates", 1),
        ("hosted zones", 1),
        ("buckets", 1),
        ("load balancers", 1),
    ] {
        assert_eq!(reference[what], n, "{what}");
    }
    let clean_destroy = run("destroy", None);
    succeeded(&clean_destroy, "clean destroy");
    let destroy_total = mutating_calls(&clean_destroy);
    assert_eq!(everything(&moto.url(), region).await, pristine);

    for k in crash_points(total, CRASH_POINTS) {
        moto.reset();
        crashed(&run("apply", Some(k)), &format!("apply at {k}"));
        succeeded(&run("apply", None), &format!("apply after a crash at {k}"));
        assert_eq!(
            everything(&moto.url(), region).await,
            reference,
            "after a crash at mutating call {k} of {total}"
        );
        succeeded(
            &run("destroy", None),
            &format!("destroy after a crash at {k}"),
        );
        assert_eq!(
            everything(&moto.url(), region).await,
            pristine,
            "destroy after a crash at mutating call {k} left something"
        );
    }
    for k in crash_points(destroy_total, CRASH_POINTS) {
        moto.reset();
        succeeded(&run("apply", None), "apply");
        crashed(&run("destroy", Some(k)), &format!("destroy at {k}"));
        succeeded(
            &run("destroy", None),
            &format!("destroy after a crash at {k}"),
        );
        assert_eq!(
            everything(&moto.url(), region).await,
            pristine,
            "a destroy stopped after mutating call {k} of {destroy_total} left something"
        );
    }
}

/// A stack whose names are in a zone it does not manage: the records that validate its
/// certificates are in its status and in `webstack status`, to be written where the zone is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_records_for_a_zone_elsewhere_are_reported() {
    let moto = Moto::start();
    let mut ws = deletable("tekamolo.yaml", "elsewhere");
    ws.spec.dns = None;
    let file = TempManifest::new(&serde_yaml::to_string(&ws).unwrap());
    let applied = run_cli(
        &moto.url(),
        &["apply", "-f", file.path(), "-o", "json"],
        &[],
    );
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let v: Value = serde_json::from_slice(&applied.stdout).unwrap();
    let records = v["status"]["outputs"]["validationRecords"]
        .as_array()
        .unwrap()
        .clone();
    let acm = aws_sdk_acm::Client::new(&sdk_config(&moto.url(), "us-east-1").await);
    let listed = acm.list_certificates().send().await.unwrap();
    let arn = listed.certificate_summary_list()[0]
        .certificate_arn()
        .unwrap();
    let detail = acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .unwrap();
    let options = detail.certificate().unwrap().domain_validation_options();
    assert_eq!(records.len(), options.len(), "{records:?}");
    for o in options {
        let r = o.resource_record().unwrap();
        assert!(
            records.iter().any(|x| x["name"] == r.name()
                && x["value"] == r.value()
                && x["certificate"] == "tekamolo"),
            "{r:?} in {records:?}"
        );
    }
    let status = run_cli(&moto.url(), &["status", "-f", file.path()], &[]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("Validation records to write"), "{text}");
    for o in options {
        assert!(
            text.contains(o.resource_record().unwrap().value()),
            "{text}"
        );
    }
    let destroyed = run_cli(&moto.url(), &["destroy", "-f", file.path()], &[]);
    assert!(
        destroyed.status.success(),
        "{}",
        String::from_utf8_lossy(&destroyed.stderr)
    );
}
