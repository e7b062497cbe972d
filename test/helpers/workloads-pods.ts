// Pod specs the workload tests run: the old beersystem Redis, the Bitnami release's pods, a Job,
// the beersystem app — shaped as the API half's controllers would create them.
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import type { KubeObject } from '../../sandbox/runtime.ts';

const run = promisify(execFile);

export const PASSWORD = 'sandbox-test-password-0123456789';

export function oldRedisPod(name = 'redis-6d4b7-abcde'): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'beersystem', labels: { app: 'redis' } },
    spec: {
      containers: [
        {
          name: 'redis',
          image: 'redis:7.2-alpine',
          args: ['--requirepass', '$(REDIS_PASSWORD)'],
          env: [
            {
              name: 'REDIS_PASSWORD',
              valueFrom: { secretKeyRef: { name: 'beersystem-redis', key: 'password' } },
            },
          ],
          ports: [{ name: 'redis', containerPort: 6379 }],
        },
      ],
    },
  };
}

export function bitnamiPod(role: 'master' | 'replica', ordinal = 0, metrics = true): KubeObject {
  const set = role === 'master' ? 'redis-shared-master' : 'redis-shared-replicas';
  const name = `${set}-${ordinal}`;
  const passwordEnv = {
    name: 'REDIS_PASSWORD',
    valueFrom: { secretKeyRef: { name: 'redis-credentials', key: 'redis-password' } },
  };
  const containers: object[] = [
    {
      name: 'redis',
      image: 'bitnamilegacy/redis:8.2.1-debian-12-r0',
      env: [
        { name: 'REDIS_REPLICATION_MODE', value: role === 'master' ? 'master' : 'replica' },
        passwordEnv,
        { name: 'REDIS_DISABLE_COMMANDS', value: 'FLUSHDB,FLUSHALL' },
        ...(role === 'replica'
          ? [
              { name: 'REDIS_MASTER_HOST', value: 'redis-shared-master.redis.svc.cluster.local' },
              { name: 'REDIS_MASTER_PORT_NUMBER', value: '6379' },
            ]
          : []),
      ],
      ports: [{ name: 'redis', containerPort: 6379 }],
      // The chart's probe script; its timings shortened (the chart: every 5 s, 5 failures) so the
      // tests see a readiness change within seconds.
      readinessProbe: {
        exec: {
          command: [
            'sh',
            '-c',
            `/health/ping_readiness_local${role === 'replica' ? '_and_master' : ''}.sh 1`,
          ],
        },
        periodSeconds: 1,
        timeoutSeconds: 2,
        failureThreshold: 3,
      },
      volumeMounts: [{ name: 'redis-data', mountPath: '/data' }],
    },
  ];
  if (metrics) {
    containers.push({
      name: 'metrics',
      image: 'bitnamilegacy/redis-exporter:1.76.0',
      env: [passwordEnv],
      ports: [{ name: 'metrics', containerPort: 9121 }],
    });
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'redis',
      labels: {
        'app.kubernetes.io/name': 'redis',
        'app.kubernetes.io/instance': 'redis-shared',
        'app.kubernetes.io/component': role,
      },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'StatefulSet', name: set, uid: `uid-${set}` },
      ],
    },
    spec: {
      containers,
      volumes: [{ name: 'redis-data', persistentVolumeClaim: { claimName: `redis-data-${name}` } }],
    },
  };
}

export function jobPod(namespace: string, name: string, container: object): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels: { 'job-name': name.replace(/-[a-z0-9]{5}$/, '') },
      ownerReferences: [
        {
          apiVersion: 'batch/v1',
          kind: 'Job',
          name: name.replace(/-[a-z0-9]{5}$/, ''),
          uid: 'uid-job',
        },
      ],
    },
    spec: {
      restartPolicy: 'Never',
      containers: [{ name: 'main', image: 'redis:7', ...container }],
    },
  };
}

export function beersystemPod(env: object[], name = 'beersystem-7f9c8-xyz12'): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'beersystem', labels: { app: 'beersystem' } },
    spec: {
      containers: [
        {
          name: 'beersystem',
          image: 'beersystem:1.4',
          env,
          ports: [{ name: 'http', containerPort: 8080 }],
        },
      ],
    },
  };
}

/** redis-cli with the password in REDISCLI_AUTH, never in argv; its stdout and stderr. */
export async function redisCli(
  host: string,
  args: string[],
  password = PASSWORD,
  port = 6379,
): Promise<string> {
  const { stdout, stderr } = await run('redis-cli', ['-h', host, '-p', String(port), ...args], {
    env: { ...process.env, REDISCLI_AUTH: password },
  });
  return `${stdout}${stderr}`.trim();
}

/**
 * AUTH + PING to host:port from a chosen source address (e.g. 127.0.1.5, outside a
 * LoadBalancer's source ranges): `PONG`, `timeout`, the socket error code (`ECONNRESET` when
 * the connection is reset), `closed`, or what the server answered instead.
 */
export function redisPingFrom(
  source: string,
  host: string,
  port: number,
  password = PASSWORD,
): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, localAddress: source });
    let reply = '';
    socket.setTimeout(3000, () => {
      socket.destroy();
      resolve('timeout');
    });
    socket.on('connect', () => socket.write(`AUTH ${password}\r\nPING\r\n`));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('PONG')) {
        socket.destroy();
        resolve('PONG');
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    socket.on('close', () => resolve(reply || 'closed'));
  });
}
