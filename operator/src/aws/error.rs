//! Typed AWS errors: which call failed, the AWS code and message, and what the engine may do about it.

use std::fmt;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// How an AWS failure should be handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The service refused the request for rate reasons; it did not take effect.
    Throttled,
    /// The service was unavailable (HTTP 503); the request did not take effect.
    Unavailable,
    /// The outcome is unknown (a 5xx other than 503, a timeout, a broken connection):
    /// the request may or may not have taken effect, so a create must look before it retries.
    Ambiguous,
    /// Another resource still depends on this one, or AWS has not settled yet; retry later.
    DependencyViolation,
    /// The resource does not exist.
    NotFound,
    /// An account quota is reached (VPCs, load balancers, instances per class): retrying does
    /// not help until the quota is raised or something is deleted.
    Quota,
    /// The request itself is wrong or not allowed; retrying will not help.
    Permanent,
}

/// One failed AWS call, with enough context for a status condition a user can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    pub code: String,
    pub message: String,
    pub class: ErrorClass,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} failed: {}",
            self.service, self.operation, self.code
        )?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for AwsError {}

/// Error codes by which AWS services say "slow down".
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Error codes meaning "another resource still depends on this one" or "not settled yet":
/// states that clear by themselves.
const DEPENDENCY_CODES: &[&str] = &[
    "DependencyViolation",
    "InvalidDependencyViolation",
    "ResourceInUse",
    "ResourceInUseException",
    "IncorrectState",
    "InvalidGatewayID.NotFound",
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBSubnetGroupStateFault",
    "InvalidDBParameterGroupState",
    "InvalidCacheClusterState",
    "InvalidReplicationGroupState",
    "InvalidCacheSubnetGroupState",
    "CacheSubnetGroupInUse",
    "ConcurrentModification",
    "ConcurrentModificationException",
    "OperationAborted",
    "ResourceConflictException",
    "ConflictException",
    "ScalingActivityInProgress",
    "ScalingActivityInProgressFault",
    "ResourceContention",
    "DeleteConflict",
];

/// How one service's code (and, where AWS reuses a code, its message) is to be read: a code
/// means something else in one service than in the others, or a validation error is in truth
/// a dependency that is not visible yet (a role just created is not yet known to EC2).
pub struct ServiceCode {
    pub service: &'static str,
    pub code: &'static str,
    /// Applies only when the message contains this; any message when empty.
    pub message: &'static str,
    pub class: ErrorClass,
}

/// Each area's codes. IAM is eventually consistent: for seconds after a role or instance
/// profile is created, the services that use it answer as if it did not exist.
pub const SERVICE_CODES: &[ServiceCode] = &[
    ServiceCode {
        service: "ec2",
        code: "InvalidParameterValue",
        message: "IamInstanceProfile",
        class: ErrorClass::DependencyViolation,
    },
    ServiceCode {
        service: "autoscaling",
        code: "ValidationError",
        message: "Invalid IamInstanceProfile",
        class: ErrorClass::DependencyViolation,
    },
    ServiceCode {
        service: "lambda",
        code: "InvalidParameterValueException",
        message: "cannot be assumed",
        class: ErrorClass::DependencyViolation,
    },
    ServiceCode {
        service: "ecs",
        code: "InvalidParameterException",
        message: "Unable to assume",
        class: ErrorClass::DependencyViolation,
    },
    ServiceCode {
        service: "autoscaling",
        code: "ResourceContention",
        message: "",
        class: ErrorClass::Throttled,
    },
    // API Gateway says LimitExceeded for its request rate.
    ServiceCode {
        service: "apigateway",
        code: "LimitExceededException",
        message: "",
        class: ErrorClass::Throttled,
    },
    ServiceCode {
        service: "iam",
        code: "LimitExceeded",
        message: "",
        class: ErrorClass::Quota,
    },
];

/// The class a service's own rules give an error, if any.
pub fn classify_in_service(service: &str, code: &str, message: &str) -> Option<ErrorClass> {
    SERVICE_CODES
        .iter()
        .find(|r| r.service == service && r.code == code && message.contains(r.message))
        .map(|r| r.class)
}

impl AwsError {
    pub fn new(
        service: &'static str,
        operation: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
        class: ErrorClass,
    ) -> Self {
        AwsError {
            service,
            operation,
            code: code.into(),
            message: message.into(),
            class,
        }
    }

    /// A request the operator could not build from the desired properties (a builder refused
    /// them): a defect, never retried.
    pub fn invalid(
        service: &'static str,
        operation: &'static str,
        error: impl std::fmt::Display,
    ) -> Self {
        AwsError::new(
            service,
            operation,
            "InvalidRequest",
            error.to_string(),
            ErrorClass::Permanent,
        )
    }

    /// Classifies an SDK error. Codes ending in `NotFound` (EC2's `InvalidVpcID.NotFound`,
    /// `InvalidAllocationID.NotFound`, ...) mean the resource is gone.
    pub fn from_sdk<E>(
        service: &'static str,
        operation: &'static str,
        err: &SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_owned);
        let message = err.message().map(str::to_owned).unwrap_or_default();
        match err {
            SdkError::TimeoutError(_) => {
                return AwsError::new(
                    service,
                    operation,
                    "Timeout",
                    "the request timed out",
                    ErrorClass::Ambiguous,
                )
            }
            SdkError::DispatchFailure(e) => {
                let class = if e.is_io() || e.is_timeout() || e.is_other() {
                    ErrorClass::Ambiguous
                } else {
                    ErrorClass::Permanent
                };
                return AwsError::new(
                    service,
                    operation,
                    "DispatchFailure",
                    format!("{e:?}"),
                    class,
                );
            }
            SdkError::ConstructionFailure(e) => {
                return AwsError::new(
                    service,
                    operation,
                    "InvalidRequest",
                    format!("{e:?}"),
                    ErrorClass::Permanent,
                )
            }
            _ => {}
        }
        let code = code.unwrap_or_else(|| match status {
            Some(s) => format!("HTTP{s}"),
            None => "Unknown".to_owned(),
        });
        let class = classify_in_service(service, &code, &message)
            .unwrap_or_else(|| classify(&code, status));
        let message = if message.is_empty() && class == ErrorClass::Permanent {
            format!("{err:?}")
        } else {
            message
        };
        AwsError::new(service, operation, code, message, class)
    }

    /// Whether trying again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.class,
            ErrorClass::Throttled
                | ErrorClass::Unavailable
                | ErrorClass::Ambiguous
                | ErrorClass::DependencyViolation
        )
    }

    /// Whether the request certainly did not take effect and can be sent again as it is.
    pub fn not_executed(&self) -> bool {
        matches!(self.class, ErrorClass::Throttled | ErrorClass::Unavailable)
    }

    pub fn is_not_found(&self) -> bool {
        self.class == ErrorClass::NotFound
    }
}

/// For deletions and reads of what may be gone already: a resource that is not found is the
/// outcome wanted, not an error.
pub trait OrAbsent {
    fn or_absent(self) -> Result<(), AwsError>;
}

impl<T> OrAbsent for Result<T, AwsError> {
    fn or_absent(self) -> Result<(), AwsError> {
        match self {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }
}

/// The class of an AWS error from its code and HTTP status.
pub fn classify(code: &str, status: Option<u16>) -> ErrorClass {
    if THROTTLING_CODES.contains(&code) || status == Some(429) {
        ErrorClass::Throttled
    } else if status == Some(503) || code == "ServiceUnavailable" || code == "Unavailable" {
        ErrorClass::Unavailable
    } else if DEPENDENCY_CODES.contains(&code) {
        ErrorClass::DependencyViolation
    } else if code.ends_with("NotFound")
        || code.ends_with("NotFoundException")
        || code.ends_with("NotFoundFault")
        || code.starts_with("NoSuch")
    {
        ErrorClass::NotFound
    } else if code.contains("LimitExceeded")
        || code.contains("QuotaExceeded")
        || code.starts_with("TooMany")
    {
        ErrorClass::Quota
    } else if status.is_some_and(|s| s >= 500)
        || code == "InternalError"
        || code == "InternalFailure"
    {
        ErrorClass::Ambiguous
    } else {
        ErrorClass::Permanent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_codes_and_statuses() {
        assert_eq!(
            classify("RequestLimitExceeded", Some(503)),
            ErrorClass::Throttled
        );
        assert_eq!(classify("Throttling", Some(400)), ErrorClass::Throttled);
        assert_eq!(classify("HTTP429", Some(429)), ErrorClass::Throttled);
        assert_eq!(
            classify("ServiceUnavailable", Some(503)),
            ErrorClass::Unavailable
        );
        assert_eq!(classify("InternalError", Some(500)), ErrorClass::Ambiguous);
        assert_eq!(classify("HTTP502", Some(502)), ErrorClass::Ambiguous);
        assert_eq!(
            classify("DependencyViolation", Some(400)),
            ErrorClass::DependencyViolation
        );
        assert_eq!(
            classify("InvalidVpcID.NotFound", Some(400)),
            ErrorClass::NotFound
        );
        assert_eq!(
            classify("InvalidParameterValue", Some(400)),
            ErrorClass::Permanent
        );
        assert_eq!(
            classify("UnauthorizedOperation", Some(403)),
            ErrorClass::Permanent
        );
    }

    #[test]
    fn each_service_has_its_not_found_state_and_quota_codes() {
        for code in [
            "NoSuchBucket",
            "NoSuchEntity",
            "NoSuchHostedZone",
            "DBInstanceNotFound",
            "DBInstanceNotFoundFault",
            "CacheSubnetGroupNotFoundFault",
            "ResourceNotFoundException",
            "RepositoryNotFoundException",
            "LoadBalancerNotFound",
        ] {
            assert_eq!(classify(code, Some(404)), ErrorClass::NotFound, "{code}");
        }
        for code in [
            "InvalidDBInstanceState",
            "InvalidReplicationGroupState",
            "ResourceInUse",
            "ConcurrentModificationException",
            "OperationAborted",
            "DependencyViolation",
        ] {
            assert_eq!(
                classify(code, Some(400)),
                ErrorClass::DependencyViolation,
                "{code}"
            );
        }
        for code in [
            "VpcLimitExceeded",
            "AddressLimitExceeded",
            "TooManyLoadBalancers",
            "InstanceQuotaExceeded",
            "LimitExceededException",
        ] {
            assert_eq!(classify(code, Some(400)), ErrorClass::Quota, "{code}");
        }
        // A rate limit whose name says limit, and codes AWS reuses with another meaning.
        assert_eq!(
            classify("RequestLimitExceeded", Some(400)),
            ErrorClass::Throttled
        );
        assert_eq!(
            classify_in_service("apigateway", "LimitExceededException", "rate"),
            Some(ErrorClass::Throttled)
        );
        assert_eq!(
            classify_in_service(
                "ec2",
                "InvalidParameterValue",
                "Value (x) for parameter iamInstanceProfile.name is invalid. Invalid IamInstanceProfile name"
            ),
            Some(ErrorClass::DependencyViolation),
            "an instance profile EC2 cannot see yet"
        );
        assert_eq!(
            classify_in_service(
                "autoscaling",
                "ValidationError",
                "Invalid IamInstanceProfile: x"
            ),
            Some(ErrorClass::DependencyViolation)
        );
        assert_eq!(
            classify_in_service("ec2", "InvalidParameterValue", "bad CIDR"),
            None
        );
        let quota = AwsError::new(
            "elbv2",
            "CreateLoadBalancer",
            "TooManyLoadBalancers",
            "",
            ErrorClass::Quota,
        );
        assert!(!quota.is_retryable());
    }

    #[test]
    fn only_transient_classes_are_retryable() {
        let e = |class| AwsError::new("ec2", "CreateVpc", "X", "m", class);
        assert!(e(ErrorClass::Throttled).is_retryable());
        assert!(e(ErrorClass::Ambiguous).is_retryable());
        assert!(!e(ErrorClass::Ambiguous).not_executed());
        assert!(e(ErrorClass::Unavailable).not_executed());
        assert!(!e(ErrorClass::Permanent).is_retryable());
        assert!(!e(ErrorClass::NotFound).is_retryable());
        assert_eq!(
            e(ErrorClass::Permanent).to_string(),
            "ec2 CreateVpc failed: X: m"
        );
    }
}
