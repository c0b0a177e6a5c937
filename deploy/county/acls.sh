#!/usr/bin/env bash
# Prints the commands that let one county (县/区/市) of Lishui run its own zhengming deployment
# against the city's Kafka cluster: its topics, and ACLs limited to its own topic prefix
# (zm.<county>.) and consumer-group prefix (zm.<county>.). Run by the city's Kafka operator;
# read what it prints, then pipe it to a shell:
#
#   deploy/county/acls.sh 331122 --bootstrap kafka1.city:9093 --command-config admin.properties | sh -e
#
# The output never names another county: each county sees and writes only its own topics.
# See deploy/county/README.md for what each grant is for.
set -euo pipefail

# The nine counties of 丽水市 (331100, the city itself, is not a county: see README.md).
COUNTIES=(
    331102  # 莲都区
    331121  # 青田县
    331122  # 缙云县
    331123  # 遂昌县
    331124  # 松阳县
    331125  # 云和县
    331126  # 庆元县
    331127  # 景宁畲族自治县
    331181  # 龙泉市
)
CONTEXTS=(archive clarification intake review)
# Every consumer of the four services (shared/topics.py dead_letter_topic: zm.dlq.<consumer>).
CONSUMERS=(
    intake.results intake.inbound
    review.handover review.re-review
    clarification.review clarification.intake
    archive.clarification archive.stats-intake archive.stats-review archive.stats-clarification
)
CHECKPOINTS_TOPIC=zm.audit.checkpoints
CHECKPOINT_MAX_BYTES=16777216

usage() {
    cat <<EOF
usage: $0 COUNTY [options]

  COUNTY                      one of: ${COUNTIES[*]}
  --principal P               the county's Kafka principal (default User:zm-COUNTY)
  --bootstrap HOST:PORT       the city's brokers (default \$CITY_KAFKA_BOOTSTRAP or kafka1.city:9093)
  --command-config FILE       admin client properties of the operator (default admin.properties)
  --kafka-bin DIR             where kafka-acls.sh and kafka-topics.sh are (default /opt/kafka/bin)
  --partitions N              partitions of the county's topics (default 3)
  --replication-factor N      (default 3)
  --inbound-principal P       another agency's system allowed to write the county's inbound reports
  --notices-principal P       the organisation department reading the county's personnel notices
  --remove                    print the commands that revoke the ACLs instead (topics are kept)
  --acls-only                 print no topic creation
EOF
}

[[ $# -ge 1 ]] || { usage >&2; exit 2; }
case "$1" in -h | --help) usage; exit 0 ;; esac
county=$1
shift
known=0
for c in "${COUNTIES[@]}"; do [[ $c == "$county" ]] && known=1; done
if [[ $known -eq 0 ]]; then
    echo "error: $county is not a county of Lishui (${COUNTIES[*]})" >&2
    exit 2
fi

principal="User:zm-$county"
bootstrap=${CITY_KAFKA_BOOTSTRAP:-kafka1.city:9093}
command_config=admin.properties
kafka_bin=/opt/kafka/bin
partitions=3
replication=3
inbound_principal=
notices_principal=
action=--add
topics=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --principal) principal=$2; shift 2 ;;
        --bootstrap) bootstrap=$2; shift 2 ;;
        --command-config) command_config=$2; shift 2 ;;
        --kafka-bin) kafka_bin=$2; shift 2 ;;
        --partitions) partitions=$2; shift 2 ;;
        --replication-factor) replication=$2; shift 2 ;;
        --inbound-principal) inbound_principal=$2; shift 2 ;;
        --notices-principal) notices_principal=$2; shift 2 ;;
        --remove) action="--remove --force"; shift ;;
        --acls-only) topics=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
[[ $principal == *:* ]] || { echo "error: a principal is TYPE:NAME, e.g. User:zm-$county" >&2; exit 2; }

prefix="zm.$county."
q() { printf '%q' "$1"; }
acl() { echo "$(q "$kafka_bin/kafka-acls.sh") --bootstrap-server $(q "$bootstrap") --command-config $(q "$command_config") $action $*"; }
topic() { echo "$(q "$kafka_bin/kafka-topics.sh") --bootstrap-server $(q "$bootstrap") --command-config $(q "$command_config") --create --if-not-exists $*"; }

echo "# zhengming county deployment $county on the city's Kafka cluster: principal $principal"
echo "# SCRAM credentials of the principal (password from the secret store, never in a file):"
echo "#   $(q "$kafka_bin/kafka-configs.sh") --bootstrap-server $(q "$bootstrap") --command-config $(q "$command_config") --alter --entity-type users --entity-name ${principal#*:} --add-config 'SCRAM-SHA-512=[password=...]'"

if [[ $topics -eq 1 && $action == --add ]]; then
    echo
    echo "# Topics of the county (shared/topics.py provisioned_topics): created by the operator, the county has no CREATE."
    for context in "${CONTEXTS[@]}"; do
        topic "--topic ${prefix}$context.events --partitions $partitions --replication-factor $replication"
    done
    topic "--topic ${prefix}inbound.reports --partitions $partitions --replication-factor $replication"
    topic "--topic ${prefix}public.personnel-notices.v1 --partitions $partitions --replication-factor $replication"
    echo "# Shared by every deployment (once per cluster; --if-not-exists makes a repeat harmless)."
    for consumer in "${CONSUMERS[@]}"; do
        topic "--topic zm.dlq.$consumer --partitions 1 --replication-factor $replication"
    done
    topic "--topic $CHECKPOINTS_TOPIC --partitions 1 --replication-factor $replication --config max.message.bytes=$CHECKPOINT_MAX_BYTES"
fi

echo
echo "# Its own topics: read and describe (pattern subscriptions)."
acl "--allow-principal $(q "$principal") --operation Read --operation Describe --topic $prefix --resource-pattern-type prefixed"
echo "# Producer grants: write (relay, idempotent producer) only its own context topics and its public notices;"
echo "# never its inbound reports (another agency writes those). Consumers check signatures on top (shared/signing.py)."
for context in "${CONTEXTS[@]}"; do
    acl "--allow-principal $(q "$principal") --operation Write --topic ${prefix}$context.events"
done
acl "--allow-principal $(q "$principal") --operation Write --topic ${prefix}public.personnel-notices.v1"
echo "# Its relays publish in Kafka transactions under zm.$county.relay.<service> (shared/outbox.py)."
acl "--allow-principal $(q "$principal") --operation Write --operation Describe --transactional-id $prefix --resource-pattern-type prefixed"
echo "# Its own consumer groups: ZM_SERVICE_GROUP_PREFIX=zm.$county gives zm.$county.<consumer>."
acl "--allow-principal $(q "$principal") --operation Read --operation Describe --group $prefix --resource-pattern-type prefixed"
echo "# Dead letters and checkpoints are shared topics: write only, so no county reads another's."
for consumer in "${CONSUMERS[@]}"; do
    acl "--allow-principal $(q "$principal") --operation Write --operation Describe --topic zm.dlq.$consumer"
done
acl "--allow-principal $(q "$principal") --operation Write --operation Describe --topic $CHECKPOINTS_TOPIC"

if [[ -n $inbound_principal ]]; then
    echo "# Another agency's system hands reports to the county's intake (inbound integration)."
    acl "--allow-principal $(q "$inbound_principal") --operation Write --operation Describe --topic ${prefix}inbound.reports"
fi
if [[ -n $notices_principal ]]; then
    echo "# The organisation department reads the county's personnel notices (public contract v1)."
    acl "--allow-principal $(q "$notices_principal") --operation Read --operation Describe --topic ${prefix}public.personnel-notices.v1"
    acl "--allow-principal $(q "$notices_principal") --operation Read --operation Describe --group personnel-notices.$county. --resource-pattern-type prefixed"
fi
