import { httpRouter } from "convex/server";
import { internal } from "./_generated/api";
import { httpAction } from "./_generated/server";

const http = httpRouter();

// A webhook: records the message; the rest happens in scheduled work.
http.route({
  path: "/webhook",
  method: "POST",
  handler: httpAction(async (ctx, request) => {
    const { body } = await request.json();
    const id = await ctx.runMutation(internal.messages.receive, { body });
    return Response.json({ id }, { status: 202 });
  }),
});

export default http;
