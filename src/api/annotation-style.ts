// The style a build summary is annotated with: green for a passed build, red for a failed or
// failing one, blue (info) otherwise (running, canceled, blocked...).
export type AnnotationStyle = 'success' | 'error' | 'info' | 'warning';

export function annotationStyle(state: string | undefined): AnnotationStyle {
  return state === 'passed' ? 'success' : state === 'failed' || state === 'failing' ? 'error' : 'info';
}
