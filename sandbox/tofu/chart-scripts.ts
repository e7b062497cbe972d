// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the scripts are shell text, whose ${VAR} is the shell's
// The chart's health and start scripts ConfigMaps as bitnami/redis 23.1.1 renders them for
// architecture: replication, no Sentinel, auth.usePasswordFiles (templates/health-configmap.yaml,
// templates/scripts-configmap.yaml; the real render is test/fixtures/terraform/
// bitnami-redis-23.1.1-rendered.yaml). The sandbox does not run them: its kubelet emulates what
// each probe script checks (workloads/probes.ts). They are rendered for the pods' checksums and
// for what reads the release.

/** health-configmap.yaml's data. */
export const HEALTH_SCRIPTS: Readonly<Record<string, string>> = {
  'ping_readiness_local.sh':
    '#!/bin/bash\n\ntimeout=$1\nrun_redis_command() {\n    local args=("-p" "$REDIS_PORT")\n    timeout -s 15 $timeout redis-cli "${args[@]}" "$@"\n}\n\n[[ -f $REDIS_PASSWORD_FILE ]] && export REDIS_PASSWORD="$(< "${REDIS_PASSWORD_FILE}")"\n[[ -n "$REDIS_PASSWORD" ]] && export REDISCLI_AUTH="$REDIS_PASSWORD"\nresponse=$(run_redis_command ping)\nif [ "$?" -eq "124" ]; then\n  echo "Timed out"\n  exit 1\nfi\nif [ "$response" != "PONG" ]; then\n  echo "$response"\n  exit 1\nfi',
  'ping_liveness_local.sh':
    '#!/bin/bash\n\n[[ -f $REDIS_PASSWORD_FILE ]] && export REDIS_PASSWORD="$(< "${REDIS_PASSWORD_FILE}")"\n[[ -n "$REDIS_PASSWORD" ]] && export REDISCLI_AUTH="$REDIS_PASSWORD"\nresponse=$(\n  timeout -s 15 $1 \\\n  redis-cli \\\n    -h localhost \\\n    -p $REDIS_PORT \\\n    ping\n)\nif [ "$?" -eq "124" ]; then\n  echo "Timed out"\n  exit 1\nfi\nresponseFirstWord=$(echo $response | head -n1 | awk \'{print $1;}\')\nif [ "$response" != "PONG" ] && [ "$responseFirstWord" != "LOADING" ] && [ "$responseFirstWord" != "MASTERDOWN" ]; then\n  echo "$response"\n  exit 1\nfi',
  'ping_readiness_master.sh':
    '#!/bin/bash\n\n[[ -f $REDIS_MASTER_PASSWORD_FILE ]] && export REDIS_MASTER_PASSWORD="$(< "${REDIS_MASTER_PASSWORD_FILE}")"\n[[ -n "$REDIS_MASTER_PASSWORD" ]] && export REDISCLI_AUTH="$REDIS_MASTER_PASSWORD"\nresponse=$(\n  timeout -s 15 $1 \\\n  redis-cli \\\n    -h $REDIS_MASTER_HOST \\\n    -p $REDIS_MASTER_PORT_NUMBER \\\n    ping\n)\nif [ "$?" -eq "124" ]; then\n  echo "Timed out"\n  exit 1\nfi\nif [ "$response" != "PONG" ]; then\n  echo "$response"\n  exit 1\nfi',
  'ping_liveness_master.sh':
    '#!/bin/bash\n\n[[ -f $REDIS_MASTER_PASSWORD_FILE ]] && export REDIS_MASTER_PASSWORD="$(< "${REDIS_MASTER_PASSWORD_FILE}")"\n[[ -n "$REDIS_MASTER_PASSWORD" ]] && export REDISCLI_AUTH="$REDIS_MASTER_PASSWORD"\nresponse=$(\n  timeout -s 15 $1 \\\n  redis-cli \\\n    -h $REDIS_MASTER_HOST \\\n    -p $REDIS_MASTER_PORT_NUMBER \\\n    ping\n)\nif [ "$?" -eq "124" ]; then\n  echo "Timed out"\n  exit 1\nfi\nresponseFirstWord=$(echo $response | head -n1 | awk \'{print $1;}\')\nif [ "$response" != "PONG" ] && [ "$responseFirstWord" != "LOADING" ]; then\n  echo "$response"\n  exit 1\nfi',
  'ping_readiness_local_and_master.sh':
    'script_dir="$(dirname "$0")"\nexit_status=0\n"$script_dir/ping_readiness_local.sh" $1 || exit_status=$?\n"$script_dir/ping_readiness_master.sh" $1 || exit_status=$?\nexit $exit_status',
  'ping_liveness_local_and_master.sh':
    'script_dir="$(dirname "$0")"\nexit_status=0\n"$script_dir/ping_liveness_local.sh" $1 || exit_status=$?\n"$script_dir/ping_liveness_master.sh" $1 || exit_status=$?\nexit $exit_status',
};

/** scripts-configmap.yaml's data; the replica's names its headless Service. */
export function startScripts(headlessService: string): Record<string, string> {
  return {
    'start-master.sh':
      '#!/bin/bash\n\n[[ -f $REDIS_PASSWORD_FILE ]] && export REDIS_PASSWORD="$(< "${REDIS_PASSWORD_FILE}")"\nif [[ -f /opt/bitnami/redis/mounted-etc/master.conf ]];then\n    cp /opt/bitnami/redis/mounted-etc/master.conf /opt/bitnami/redis/etc/master.conf\nfi\nif [[ -f /opt/bitnami/redis/mounted-etc/redis.conf ]];then\n    cp /opt/bitnami/redis/mounted-etc/redis.conf /opt/bitnami/redis/etc/redis.conf\nfi\nif [[ -f /opt/bitnami/redis/mounted-etc/users.acl ]];then\n    cp /opt/bitnami/redis/mounted-etc/users.acl /opt/bitnami/redis/etc/users.acl\nfi\nARGS=("--port" "${REDIS_PORT}")\nARGS+=("--requirepass" "${REDIS_PASSWORD}")\nARGS+=("--masterauth" "${REDIS_PASSWORD}")\nARGS+=("--include" "/opt/bitnami/redis/etc/redis.conf")\nARGS+=("--include" "/opt/bitnami/redis/etc/master.conf")\nexec redis-server "${ARGS[@]}"\n',
    'start-replica.sh': `#!/bin/bash

get_port() {
    hostname="$1"
    type="$2"

    port_var=$(echo "\${hostname^^}_SERVICE_PORT_$type" | sed "s/-/_/g")
    port=\${!port_var}

    if [ -z "$port" ]; then
        case $type in
            "SENTINEL")
                echo 26379
                ;;
            "REDIS")
                echo 6379
                ;;
        esac
    else
        echo $port
    fi
}

get_full_hostname() {
    hostname="$1"
    full_hostname="\${hostname}.\${HEADLESS_SERVICE}"
    echo "\${full_hostname}"
}

REDISPORT=$(get_port "$HOSTNAME" "REDIS")
HEADLESS_SERVICE="${headlessService}"

[[ -f $REDIS_PASSWORD_FILE ]] && export REDIS_PASSWORD="$(< "\${REDIS_PASSWORD_FILE}")"
[[ -f $REDIS_MASTER_PASSWORD_FILE ]] && export REDIS_MASTER_PASSWORD="$(< "\${REDIS_MASTER_PASSWORD_FILE}")"
if [[ -f /opt/bitnami/redis/mounted-etc/replica.conf ]];then
    cp /opt/bitnami/redis/mounted-etc/replica.conf /opt/bitnami/redis/etc/replica.conf
fi
if [[ -f /opt/bitnami/redis/mounted-etc/redis.conf ]];then
    cp /opt/bitnami/redis/mounted-etc/redis.conf /opt/bitnami/redis/etc/redis.conf
fi
if [[ -f /opt/bitnami/redis/mounted-etc/users.acl ]];then
    cp /opt/bitnami/redis/mounted-etc/users.acl /opt/bitnami/redis/etc/users.acl
fi

echo "" >> /opt/bitnami/redis/etc/replica.conf
echo "replica-announce-port $REDISPORT" >> /opt/bitnami/redis/etc/replica.conf
echo "replica-announce-ip $(get_full_hostname "$HOSTNAME")" >> /opt/bitnami/redis/etc/replica.conf
ARGS=("--port" "\${REDIS_PORT}")
ARGS+=("--replicaof" "\${REDIS_MASTER_HOST}" "\${REDIS_MASTER_PORT_NUMBER}")
ARGS+=("--requirepass" "\${REDIS_PASSWORD}")
ARGS+=("--masterauth" "\${REDIS_MASTER_PASSWORD}")
ARGS+=("--include" "/opt/bitnami/redis/etc/redis.conf")
ARGS+=("--include" "/opt/bitnami/redis/etc/replica.conf")
exec redis-server "\${ARGS[@]}"
`,
  };
}
