/** The media port when no media server is configured or reachable: FACs fall back to a null-SDP answer. */
import { UnavailableError } from '../lib/errors';
import type { MediaServer } from './port';

/** A media server that is never available. */
export const NO_MEDIA: MediaServer = {
  available: false,
  createEndpoint: () => Promise.reject(new UnavailableError('media server')),
  createConference: () => Promise.reject(new UnavailableError('media server')),
};
