/**
 * xferOut (seed 002 "后转到外线", operation 46): the agent leaves the conversation and the
 * conversation calls an outside number for the party that stays. The dialing leg is recorded
 * before the agent leaves, so the conversation is never left without a party to wait for: the
 * caller hears music while the number rings. If the number fails, the caller hears the error
 * prompt and is released (the conversation ends by the ending rule).
 *
 * Runs on the conversation's owner; returns once the agent has left and the dial started.
 */
import { LegKind } from '../../lib/conversation/model';
import { InvalidRequestError, NotInConversationError, NotTransferableError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { OpType } from '../../lib/oplog';
import { dialOutside, type OutsideDeps } from './outside';

/** Registers the `xferOut` command on the hub. */
export function registerXferOut(d: OutsideDeps & { logger: Logger }): void {
  d.hub.handle('xferOut', async (cc, args) => {
    const { conversation, agent, to, from, maxDialMs, maxAnswerMs } = args;
    if (typeof conversation !== 'string' || typeof agent !== 'string' || typeof to !== 'string' || typeof from !== 'string' || typeof maxDialMs !== 'number' || typeof maxAnswerMs !== 'number') {
      throw new InvalidRequestError('xferOut: malformed command arguments');
    }
    const conv = d.hub.get(cc, conversation);
    const me = conv.legOf(agent);
    if (me === undefined) throw new NotInConversationError(agent, conversation);
    const stays = conv.liveLegs.filter((l) => l !== me && l.kind !== LegKind.Supervisor);
    if (stays.length === 0) throw new NotTransferableError(conversation, 'nobody else is in it');
    const party = stays.find((l) => l.kind === LegKind.Caller) ?? stays[0]!;
    const log = d.logger.child({ conversation, agent, op: 'xferOut' });
    const legId = await conv.dialing(LegKind.External);
    await d.hub.logOp(cc, conversation, agent, OpType.TransferOut, conv.queue);
    await conv.removeAgent(agent);
    log.info({ to }, 'transferred out: the agent left, the number is dialed');
    void dialOutside(d, conv, { to, from, maxDialMs, maxAnswerMs }, log, { legId, beforeFailure: () => conv.playTo(party.id, 'error') }).catch(async (err: unknown) => {
      log.error({ err }, 'transfer out failed');
      await conv.playTo(party.id, 'error').catch((e: unknown) => log.warn({ err: e }, 'error prompt failed'));
      await conv.dialFailed(legId, 'transfer failed');
    });
    return { conversation, agent, to, leg: legId, state: 'dialing' };
  });
}
