//! The boot script of a tier's instances, rendered from the launch template's resolved data:
//! Docker, the tier's container with the stack's endpoints in its environment (secrets by ARN,
//! read by the application with the instance's role), logs to the tier's log group, the
//! CloudWatch agent where memory is scaled on, then the user's own commands.

use serde_json::Value;

/// The script for a launch template's resolved `data`.
pub fn render(data: &Value) -> String {
    let str_of = |key: &str| data.get(key).and_then(Value::as_str).unwrap_or_default();
    let port = data.get("port").and_then(Value::as_i64).unwrap_or(8080);
    let region = str_of("region");
    let mut script = String::from(
        "#!/bin/bash\n\
         # Written by webstack-operator: the tier's container and its environment.\n\
         set -euo pipefail\n\
         if command -v dnf >/dev/null; then dnf install -y docker; else yum install -y docker; fi\n\
         systemctl enable --now docker\n",
    );
    let image = match data.get("container") {
        Some(c) => match (c.get("repository").and_then(Value::as_str), c.get("image")) {
            (Some(repository), _) => {
                let registry = repository.split('/').next().unwrap_or_default();
                script.push_str(&format!(
                    "aws ecr get-login-password --region {region} | docker login --username AWS --password-stdin {registry}\n"
                ));
                let tag = c.get("tag").and_then(Value::as_str).unwrap_or("latest");
                Some(format!("{repository}:{tag}"))
            }
            (None, Some(Value::String(image))) => Some(image.clone()),
            _ => None,
        },
        None => None,
    };
    if data
        .get("memoryMetrics")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        script.push_str(
            "if command -v dnf >/dev/null; then dnf install -y amazon-cloudwatch-agent; else yum install -y amazon-cloudwatch-agent; fi\n\
             cat > /opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json <<'EOF'\n\
             {\"metrics\":{\"append_dimensions\":{\"AutoScalingGroupName\":\"${aws:AutoScalingGroupName}\"},\"aggregation_dimensions\":[[\"AutoScalingGroupName\"]],\"metrics_collected\":{\"mem\":{\"measurement\":[\"mem_used_percent\"]}}}}\n\
             EOF\n\
             /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json\n",
        );
    }
    if let Some(image) = image {
        let mut run = format!("docker run -d --restart always --name app -p {port}:{port}");
        let log_group = str_of("logGroup");
        if !log_group.is_empty() {
            run.push_str(&format!(
                " --log-driver awslogs --log-opt awslogs-region={region} --log-opt awslogs-group={}",
                quote(log_group)
            ));
        }
        run.push_str(&format!(" -e PORT={port} -e AWS_REGION={region}"));
        if let Some(Value::Object(env)) = data.get("environment") {
            for (k, v) in env {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                run.push_str(&format!(" -e {}", quote(&format!("{k}={v}"))));
            }
        }
        run.push(' ');
        run.push_str(&quote(&image));
        script.push_str(&run);
        script.push('\n');
    }
    let extra = str_of("userData");
    if !extra.is_empty() {
        script.push_str("# The stack's own commands.\n");
        script.push_str(extra);
        if !extra.ends_with('\n') {
            script.push('\n');
        }
    }
    script
}

/// Single-quotes a word for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
