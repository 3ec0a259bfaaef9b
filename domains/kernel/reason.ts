// Failure reasons as the domains keep them: an agent's error message (a whole stderr, maybe) is
// refused past REASON_WIRE_MAX on a command and clipped to REASON_MAX in events.

/** A failure reason as events keep it: an agent's error message, clipped to this length. */
export const REASON_MAX = 1024;
/** A failure reason as a command may carry it (an agent's whole stderr): longer ones are refused. */
export const REASON_WIRE_MAX = 65_536;

/** A reason as events keep it: at most REASON_MAX characters, an ellipsis marking a cut. */
export const clipReason = (reason: string | undefined): string => {
  const r = reason ?? '';
  return r.length <= REASON_MAX ? r : `${r.slice(0, REASON_MAX - 1)}…`;
};
