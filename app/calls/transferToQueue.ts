/**
 * xfer_agent (seed 002 "后转到其它坐席", operation 45) of a conversation that is not a queue call
 * (a trunk call to an extension, a call-out, an agent-to-agent call): a task is queued on the
 * conversation with the `queue` document's conditions, and only once it is in its queue does
 * the agent leave — the party left hears music, never a hang-up. The agent who answers joins
 * the same conversation (Queue Call in that queue). At the task's max wait the party left
 * hears the error prompt and is released. Queue calls are transferred by their own loop
 * (app/sip/queueCall.ts), which keeps announcements and overflow.
 */
import { randomUUID } from 'node:crypto';
import type { TaskConditions } from '../../lib/acd/strategies';
import { LegKind } from '../../lib/conversation/model';
import { NotInConversationError, NotTransferableError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { OpType } from '../../lib/oplog';
import type { Conversation } from '../conversation/conversation';
import { cleanUpStep } from '../sip/leg';
import { serveTask, type ServeDeps } from './serveTask';

/** The queue a conversation is transferred to. */
export interface QueueTarget {
  queue: string;
  conditions?: TaskConditions | undefined;
  priority?: number | undefined;
  maxWaitSeconds?: number | undefined;
}

/** Transfers `conv` from `agent` to `target`; resolves once queued and the agent has left. */
export async function transferToQueue(d: ServeDeps & { logger: Logger }, conv: Conversation, agent: string, target: QueueTarget): Promise<{ conversation: string; task: string; queue: string }> {
  const { cc } = conv;
  const me = conv.legOf(agent);
  if (me === undefined) throw new NotInConversationError(agent, conv.id);
  const waiting = conv.liveLegs.find((l) => l !== me && (l.kind === LegKind.Caller || l.kind === LegKind.External)) ?? conv.liveLegs.find((l) => l !== me && l.kind === LegKind.Agent);
  if (waiting === undefined) throw new NotTransferableError(conv.id, 'nobody else is in it');
  const taskId = randomUUID();
  const callId = `xfer-${taskId}`;
  const log = d.logger.child({ conversation: conv.id, agent, task: taskId, op: 'xfer_agent' });
  const from = conv.queue;
  // Guard first: if this instance dies, the task is closed.
  await d.guard.track(cc, callId, [], { id: taskId, queue: target.queue });
  await conv.setTask(taskId, target.queue, true);
  let queued!: () => void;
  let failed!: (err: unknown) => void;
  const ready = new Promise<void>((resolve, reject) => {
    queued = resolve;
    failed = reject;
  });
  void serveTask(
    d, conv,
    { id: taskId, queue: target.queue, priority: target.priority ?? 0, conditions: target.conditions, maxWaitSeconds: target.maxWaitSeconds, caller: `conversation:${conv.id}`, callId },
    waiting, log,
    {
      onQueued: async () => {
        await d.hub.logOp(cc, conv.id, agent, OpType.InternalTransfer, from);
        await conv.removeAgent(agent);
        log.info({ queue: target.queue }, 'transferred: the party left waits in the queue');
        queued();
      },
    },
  )
    .then(async (served) => {
      if (served.kind === 'timeout') {
        await conv.playTo(waiting.id, 'error');
        await conv.end('transfer not answered');
      }
    })
    .catch((err: unknown) => {
      log.error({ err }, 'transfer to a queue failed');
      failed(err);
      return conv.end('transfer failed');
    })
    .finally(() => cleanUpStep(log, 'guard release', () => d.guard.untrack(cc, callId)));
  await ready;
  return { conversation: conv.id, task: taskId, queue: target.queue };
}
